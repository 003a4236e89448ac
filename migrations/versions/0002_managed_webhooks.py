"""Managed Event Webhooks: the webhook a source's settings point at, and what its checks find.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from migrations.source_columns import add_missing_source_columns, drop_source_columns
from shared.column_types import UTCDateTime
from shared.tables import webhook_findings

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SOURCE_COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("webhook_id", sa.String(64)),
    sa.Column("webhook_managed", sa.String(16)),
    sa.Column("webhook_repair", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("webhook_test_status", sa.String(16)),
    sa.Column("webhook_tested_at", UTCDateTime),
    sa.Column("webhook_checked_at", UTCDateTime),
)


def upgrade() -> None:
    add_missing_source_columns(_SOURCE_COLUMNS)
    bind = op.get_bind()
    webhook_findings.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    webhook_findings.drop(bind)
    drop_source_columns(_SOURCE_COLUMNS)
