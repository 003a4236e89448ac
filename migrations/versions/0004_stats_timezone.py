"""Daily reconciliation: the time zone of a source's SendGrid statistics, and the outcome of
its last reconciliation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from migrations.source_columns import add_missing_source_columns, drop_source_columns
from shared.column_types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SOURCE_COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("stats_timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("completeness_checked_at", UTCDateTime),
    sa.Column("completeness_error", sa.Text),
)


def upgrade() -> None:
    add_missing_source_columns(_SOURCE_COLUMNS)


def downgrade() -> None:
    drop_source_columns(_SOURCE_COLUMNS)
