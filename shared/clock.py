"""The one clock of the control tables: timezone-aware UTC, so stored moments compare."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
