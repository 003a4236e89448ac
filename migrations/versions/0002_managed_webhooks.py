"""Managed Event Webhooks: the webhook a source's settings point at, and what its checks find.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.column_types import UTCDateTime
from shared.tables import CONTROL_SCHEMA, webhook_findings

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
    # 0001 builds the tables from their live definitions in shared.tables, so a database made
    # from scratch already has all of this; one made by an earlier release gets what it lacks.
    bind = op.get_bind()
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    present = {column["name"] for column in sa.inspect(bind).get_columns("sources", schema)}
    missing = [column for column in _SOURCE_COLUMNS if column.name not in present]
    if missing:
        # Alembic's operations name their tables themselves: the engine's schema translation
        # does not reach them, so the control schema is named here.
        with op.batch_alter_table("sources", schema=schema) as batch:
            for column in missing:
                batch.add_column(column._copy())
    webhook_findings.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    webhook_findings.drop(bind)
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    with op.batch_alter_table("sources", schema=schema) as batch:
        for column in reversed(_SOURCE_COLUMNS):
            batch.drop_column(column.name)
