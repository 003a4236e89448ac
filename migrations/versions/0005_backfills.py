"""Backfills from SendGrid's Email Logs: their progress rows, and the two source settings that
start them (repairing incomplete days, history at registration).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.tables import CONTROL_SCHEMA, backfills

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SOURCE_COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("completeness_repair", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("backfill_days", sa.Integer),
)


def upgrade() -> None:
    # As in 0002: a database made from scratch by 0001 has all of this already.
    bind = op.get_bind()
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    present = {column["name"] for column in sa.inspect(bind).get_columns("sources", schema)}
    missing = [column for column in _SOURCE_COLUMNS if column.name not in present]
    if missing:
        with op.batch_alter_table("sources", schema=schema) as batch:
            for column in missing:
                batch.add_column(column._copy())
    backfills.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    backfills.drop(bind)
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    with op.batch_alter_table("sources", schema=schema) as batch:
        for column in reversed(_SOURCE_COLUMNS):
            batch.drop_column(column.name)
