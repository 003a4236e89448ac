"""Every collection the peers sync: a source's chosen collections, and the cursors of the
incremental ones.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.column_types import JSONType
from shared.tables import CONTROL_SCHEMA, sync_cursors

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # As in 0002: a database made from scratch by 0001 has all of this already.
    bind = op.get_bind()
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    present = {column["name"] for column in sa.inspect(bind).get_columns("sources", schema)}
    if "collections" not in present:
        with op.batch_alter_table("sources", schema=schema) as batch:
            batch.add_column(sa.Column("collections", JSONType))
    sync_cursors.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    sync_cursors.drop(bind)
    schema = CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None
    with op.batch_alter_table("sources", schema=schema) as batch:
        batch.drop_column("collections")
