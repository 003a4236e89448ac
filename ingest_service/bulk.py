"""The bulk write path of each backend, returning which rows were new.

PostgreSQL: one `INSERT ... SELECT FROM unnest(<one array per column>) ON CONFLICT (id) DO
NOTHING RETURNING id` per table and group commit: one round trip and one plan for thousands
of rows, close to COPY's speed while still de-duplicating inside the database.

SQLite: one writer at a time, so the ids already present are read first and the rest are
inserted with a single executemany.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ingest_service.parsing import RejectedRow
from shared.events import canonical_json

_SQLITE_CHUNK = 500  # stays under SQLite's bound-parameter limit in `id IN (...)`


def _pg_array_type(column: sa.Column[Any]) -> tuple[str, bool]:
    """(element type of the unnest array, whether the value is JSON sent as text)."""
    kind = column.type
    if isinstance(kind, sa.JSON) or kind.__class__.__name__ == "JSONB":
        return "text", True
    if isinstance(kind, sa.Boolean):
        return "bool", False
    if isinstance(kind, sa.BigInteger | sa.Integer):
        return "int8", False
    if isinstance(kind, sa.DateTime):
        return "timestamptz", False
    return "text", False


async def insert_new_rows(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> set[str]:
    if not rows:
        return set()
    if connection.dialect.name == "postgresql":
        return await _insert_unnest(connection, table, rows)
    return await _insert_sqlite(connection, table, rows)


async def _insert_unnest(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> set[str]:
    names, arrays, selects, element_types = [], [], [], []
    # Sorted ids give every writer the same lock order on the unique index.
    ordered = sorted(rows, key=lambda row: row["id"])
    for number, column in enumerate(table.columns, start=1):
        element, is_json = _pg_array_type(column)
        values = [row.get(column.name) for row in ordered]
        if is_json:
            values = [None if v is None else json.dumps(v, separators=(",", ":")) for v in values]
        names.append(column.name)
        arrays.append(values)
        element_types.append(f"${number}::{element}[]")
        selects.append(f"{column.name}::jsonb" if is_json else column.name)
    statement = (
        f"INSERT INTO {table.schema}.{table.name} ({', '.join(_quoted(n) for n in names)}) "
        f"SELECT {', '.join(_quoted_expr(s) for s in selects)} "
        f"FROM unnest({', '.join(element_types)}) AS u({', '.join(_quoted(n) for n in names)}) "
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    )
    result = await connection.exec_driver_sql(statement, tuple(arrays))
    return {row[0] for row in result}


def _quoted(name: str) -> str:
    # Column names come from the event models; `timestamp` and `type` need quoting.
    return f'"{name}"'


def _quoted_expr(select: str) -> str:
    name, _, cast = select.partition("::")
    return f'"{name}"::{cast}' if cast else f'"{name}"'


async def _insert_sqlite(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> set[str]:
    ids = [row["id"] for row in rows]
    existing: set[str] = set()
    for start in range(0, len(ids), _SQLITE_CHUNK):
        chunk = ids[start : start + _SQLITE_CHUNK]
        existing |= set(
            (await connection.execute(sa.select(table.c.id).where(table.c.id.in_(chunk)))).scalars()
        )
    new = [
        {column.name: row.get(column.name) for column in table.columns}
        for row in rows
        if row["id"] not in existing
    ]
    if new:
        await connection.execute(table.insert(), new)
    return {str(row["id"]) for row in new}


async def stored_raw(
    connection: AsyncConnection, table: sa.Table, ids: Sequence[str]
) -> dict[str, str]:
    """The canonical JSON of stored events, by id (to tell a resend from a reused id)."""
    found: dict[str, str] = {}
    for start in range(0, len(ids), _SQLITE_CHUNK):
        chunk = list(ids[start : start + _SQLITE_CHUNK])
        result = await connection.execute(
            sa.select(table.c.id, table.c.raw).where(table.c.id.in_(chunk))
        )
        found |= {row_id: canonical_json(raw) for row_id, raw in result}
    return found


async def insert_rejected(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[RejectedRow], now: datetime
) -> None:
    values = {
        row.id: {
            "id": row.id,
            "received_at": now,
            "reason": row.reason,
            "event": row.event,
            "payload": row.payload,
        }
        for row in rows
    }
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    await connection.execute(
        insert(table).on_conflict_do_nothing(index_elements=["id"]), list(values.values())
    )
