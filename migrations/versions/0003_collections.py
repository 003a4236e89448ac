"""Every collection the peers sync: a source's chosen collections, and the cursors of the
incremental ones.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.source_columns import add_missing_source_columns, drop_source_columns
from shared.column_types import JSONType
from shared.tables import sync_cursors

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


_SOURCE_COLUMNS = (sa.Column("collections", JSONType),)


def upgrade() -> None:
    add_missing_source_columns(_SOURCE_COLUMNS)
    sync_cursors.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    sync_cursors.drop(op.get_bind())
    drop_source_columns(_SOURCE_COLUMNS)
