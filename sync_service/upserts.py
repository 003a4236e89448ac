"""Writing synced objects: insert-or-update in place, and soft deletion after full listings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

# Far below both backends' bound-parameter limits (32767 on asyncpg, 32766 on SQLite >= 3.32)
# at the widest table's ~25 columns, and small enough to keep memory flat.
BATCH_SIZE = 500


async def upsert_rows(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> int:
    """Insert rows, or update them in place by primary key (clearing `deleted_at`).

    Returns how many distinct objects were written.
    """
    if not rows:
        return 0
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    keys = [column.name for column in table.primary_key.columns]
    # PostgreSQL refuses to update one row twice in a statement; the last copy is the newest.
    rows = list({tuple(row[key] for key in keys): row for row in rows}.values())
    statement = insert(table)
    upsert = statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
    )
    # Executemany form: SQLAlchemy compiles the statement once and sends the rows in
    # multi-row VALUES pages ("insertmanyvalues"), instead of a new statement per batch.
    for start in range(0, len(rows), BATCH_SIZE):
        await connection.execute(upsert, list(rows[start : start + BATCH_SIZE]))
    return len(rows)


async def mark_missing_deleted(
    connection: AsyncConnection, table: sa.Table, listing_started: datetime, now: datetime
) -> int:
    """Soft-delete rows a complete listing did not contain.

    Every row the listing upserted carries `synced_at = listing_started`; anything older was
    not in it. Only call this after the listing finished without error.
    """
    result = await connection.execute(
        table.update()
        .where(table.c.deleted_at.is_(None), table.c.synced_at < listing_started)
        .values(deleted_at=now)
    )
    return int(result.rowcount or 0)
