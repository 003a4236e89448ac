"""Daily reconciliation: the time zone of a source's SendGrid statistics, and the outcome of
its last reconciliation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.column_types import UTCDateTime
from shared.tables import CONTROL_SCHEMA

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
    # As in 0002: a database made from scratch by 0001 has all of this already.
    bind = op.get_bind()
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    present = {column["name"] for column in sa.inspect(bind).get_columns("sources", schema)}
    missing = [column for column in _SOURCE_COLUMNS if column.name not in present]
    if missing:
        with op.batch_alter_table("sources", schema=schema) as batch:
            for column in missing:
                batch.add_column(column._copy())


def downgrade() -> None:
    bind = op.get_bind()
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    with op.batch_alter_table("sources", schema=schema) as batch:
        for column in reversed(_SOURCE_COLUMNS):
            batch.drop_column(column.name)
