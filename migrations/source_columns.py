"""Adding and dropping columns of the control schema's `sources` table in a migration.

0001 builds the tables from their live definitions in shared.tables, so a database made from
scratch already has every column a later revision adds; one made by an earlier release gets
what it lacks. Alembic's operations name their tables themselves (the engine's schema
translation does not reach them), so the control schema is named here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.tables import CONTROL_SCHEMA


def _schema(bind: sa.Connection) -> str | None:
    return CONTROL_SCHEMA if bind.dialect.name == "postgresql" else None


def add_missing_source_columns(columns: Sequence[sa.Column[Any]]) -> None:
    bind = op.get_bind()
    schema = _schema(bind)
    present = {column["name"] for column in sa.inspect(bind).get_columns("sources", schema)}
    missing = [column for column in columns if column.name not in present]
    if missing:
        with op.batch_alter_table("sources", schema=schema) as batch:
            for column in missing:
                batch.add_column(column._copy())


def drop_source_columns(columns: Sequence[sa.Column[Any]]) -> None:
    with op.batch_alter_table("sources", schema=_schema(op.get_bind())) as batch:
        for column in reversed(columns):
            batch.drop_column(column.name)
