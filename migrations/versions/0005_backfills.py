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

from migrations.source_columns import add_missing_source_columns, drop_source_columns
from shared.tables import backfills

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SOURCE_COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("completeness_repair", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("backfill_days", sa.Integer),
)


def upgrade() -> None:
    add_missing_source_columns(_SOURCE_COLUMNS)
    bind = op.get_bind()
    backfills.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    backfills.drop(bind)
    drop_source_columns(_SOURCE_COLUMNS)
