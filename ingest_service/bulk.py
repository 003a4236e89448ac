"""The bulk write path of each backend, returning which rows were new.

PostgreSQL: one look-up of the ids already stored, then a binary COPY of the new rows, per
table and group commit. COPY is the fastest way into PostgreSQL (about twice the rows per
second of an `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` here); the primary
key still refuses any id that slipped in meanwhile (see `_insert_copy`).

SQLite: one writer at a time, so the ids already present are read first and the rest are
inserted with a single executemany.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ingest_service.parsing import RejectedRow
from shared.events import canonical_json, dump_json

_SQLITE_CHUNK = 500  # stays under SQLite's bound-parameter limit in `id IN (...)`


def _is_json(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.JSON) or column.type.__class__.__name__ == "JSONB"


async def insert_new_rows(
    connection: AsyncConnection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    contended: bool = False,
) -> set[str]:
    """Insert the rows whose id is not stored yet; returns their ids.

    `contended`: another writer is storing the same events right now (the last attempt hit
    a unique violation). PostgreSQL then takes the path that cannot conflict, INSERT ...
    ON CONFLICT DO NOTHING, so the group always makes progress.
    """
    if not rows:
        return set()
    if connection.dialect.name == "postgresql":
        if contended:
            return await _insert_unnest(connection, table, rows)
        return await _insert_copy(connection, table, rows)
    if contended:
        return await _insert_sqlite_one_by_one(connection, table, rows)
    return await _insert_sqlite(connection, table, rows)


async def _insert_copy(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> set[str]:
    """Look up which ids exist, then COPY the rest in binary.

    COPY has no ON CONFLICT, so the primary key is the guard: if another transaction
    commits one of these ids between the look-up and the COPY, the COPY fails with a unique
    violation, the whole group commit is retried, and the retry's look-up skips it.
    """
    existing = await connection.exec_driver_sql(
        f"SELECT id FROM {table.schema}.{table.name} WHERE id = ANY($1::text[])",
        ([row["id"] for row in rows],),
    )
    present = {row[0] for row in existing}
    # Sorted ids give concurrent writers the same lock order on the primary key.
    new = sorted((row for row in rows if row["id"] not in present), key=lambda row: row["id"])
    if not new:
        return set()
    names = [column.name for column in table.columns]
    json_positions = [i for i, column in enumerate(table.columns) if _is_json(column)]
    # itemgetter builds each row's tuple in C; only the JSON values need Python work.
    values_of = operator.itemgetter(*names)
    records = []
    for row in new:
        values = list(values_of(row))
        for i in json_positions:
            if values[i] is not None:
                values[i] = dump_json(values[i])
        records.append(values)
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(
        table.name,
        schema_name=table.schema,
        records=records,
        columns=names,
    )
    return {str(row["id"]) for row in new}


def _pg_array_type(column: sa.Column[Any]) -> str:
    # A TypeDecorator (UTCDateTime) names its underlying type in `impl`.
    kind = getattr(column.type, "impl", column.type)
    if _is_json(column):
        return "text"  # sent as text, cast to jsonb in the SELECT
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.BigInteger | sa.Integer):
        return "int8"
    if isinstance(kind, sa.DateTime):
        return "timestamptz"
    return "text"


async def _insert_unnest(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> set[str]:
    """One `INSERT ... SELECT FROM unnest(<an array per column>) ON CONFLICT (id) DO NOTHING`:
    slower than COPY, but a racing writer's rows are skipped instead of failing it."""
    ordered = sorted(rows, key=lambda row: row["id"])
    # Column names come from the event models; `timestamp` and `type` need quoting.
    names = [f'"{column.name}"' for column in table.columns]
    arrays, selects = [], []
    for column in table.columns:
        values = [row.get(column.name) for row in ordered]
        if _is_json(column):
            values = [None if v is None else dump_json(v) for v in values]
        arrays.append(values)
        selects.append(f'"{column.name}"::jsonb' if _is_json(column) else f'"{column.name}"')
    arrays_sql = ", ".join(
        f"${n}::{_pg_array_type(column)}[]" for n, column in enumerate(table.columns, start=1)
    )
    result = await connection.exec_driver_sql(
        f"INSERT INTO {table.schema}.{table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(selects)} FROM unnest({arrays_sql}) AS u({', '.join(names)}) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        tuple(arrays),
    )
    return {row[0] for row in result}


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


async def _insert_sqlite_one_by_one(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> set[str]:
    """INSERT ... ON CONFLICT DO NOTHING row by row, reading each row's change count: for when
    another process (a second ingest worker) writes the same ids between look-up and insert."""
    statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["id"])
    inserted = set()
    for row in rows:
        values = {column.name: row.get(column.name) for column in table.columns}
        if (await connection.execute(statement, values)).rowcount == 1:
            inserted.add(str(row["id"]))
    return inserted


async def rows_differing_from_stored(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> set[int]:
    """Positions of `rows` whose id is stored with other content (a reused `sg_event_id`),
    as opposed to a resend of the same event. PostgreSQL compares the JSON itself (jsonb
    equality ignores key order), so nothing is read back."""
    if not rows:
        return set()
    if connection.dialect.name == "postgresql":
        result = await connection.exec_driver_sql(
            f"SELECT u.n FROM unnest($1::int[], $2::text[], $3::text[]) AS u(n, id, raw) "
            f"JOIN {table.schema}.{table.name} t ON t.id = u.id WHERE t.raw <> u.raw::jsonb",
            (
                list(range(len(rows))),
                [row["id"] for row in rows],
                [dump_json(row["raw"]) for row in rows],
            ),
        )
        return {row[0] for row in result}
    stored: dict[str, str] = {}
    ids = sorted({row["id"] for row in rows})
    for start in range(0, len(ids), _SQLITE_CHUNK):
        chunk = ids[start : start + _SQLITE_CHUNK]
        result = await connection.execute(
            sa.select(table.c.id, table.c.raw).where(table.c.id.in_(chunk))
        )
        stored |= {row_id: canonical_json(raw) for row_id, raw in result}
    return {n for n, row in enumerate(rows) if canonical_json(row["raw"]) != stored[row["id"]]}


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
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    await connection.execute(
        insert(table).on_conflict_do_nothing(index_elements=["id"]), list(values.values())
    )
