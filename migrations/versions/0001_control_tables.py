"""Control tables: sources, sync_runs, sync_run_collections, webhook_stats.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from shared.tables import control_metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first revision builds the tables from their one definition in shared.tables;
    # later revisions change them with explicit operations.
    control_metadata.create_all(op.get_bind())


def downgrade() -> None:
    control_metadata.drop_all(op.get_bind())
