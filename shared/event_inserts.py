"""The bulk write path of each backend, returning which records were new.

The records come from the parser as value tuples in the table's column order, with JSON
values as text, so nothing here converts them one value at a time.

PostgreSQL: one look-up of the ids already stored, then a binary COPY of the new records,
per table and group commit. COPY is the fastest way into PostgreSQL (about twice the rows
per second of an `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` here); the
primary key still refuses any id that slipped in meanwhile (see `_insert_copy`).

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

from shared.bulk_inserts import (
    copy_records,
    copy_records_unless_stored,
    sqlite_insert_sql,
    sqlite_values,
)
from shared.bulk_values import is_json, keys_in_json
from shared.db_errors import is_unique_violation
from shared.event_parsing import RejectedRow
from shared.event_records import ID_AT, ORIGIN_AT, RAW_AT, EventRecord
from shared.json_codec import canonical_json, dump_json, load_json

_SQLITE_CHUNK = 500  # stays under SQLite's bound-parameter limit in `id IN (...)`

_by_id = operator.itemgetter(ID_AT)


def _ids_json(records: Sequence[EventRecord]) -> str:
    return dump_json([record[ID_AT] for record in records])


async def insert_new_rows(
    connection: AsyncConnection,
    table: sa.Table,
    records: Sequence[EventRecord],
    *,
    contended: bool = False,
) -> set[str]:
    """Insert the records whose id is not stored yet; returns their ids.

    `contended`: another writer is storing the same events right now (the last attempt hit
    a unique violation). PostgreSQL then takes the path that cannot conflict, INSERT ...
    ON CONFLICT DO NOTHING, so the group always makes progress.
    """
    if not records:
        return set()
    if connection.dialect.name == "postgresql":
        if contended:
            return await _insert_unnest(connection, table, records)
        return await _insert_copy(connection, table, records)
    if contended:
        return await _insert_sqlite_one_by_one(connection, table, records)
    return await _insert_sqlite(connection, table, records)


async def insert_all_unless_stored(
    connection: AsyncConnection, table: sa.Table, records: Sequence[EventRecord]
) -> bool:
    """Insert every record with no look-up, or none of them (False) when one's id is stored
    already: the write path when duplicates are rare, which then needs no look-up at all.

    The records' ids must be distinct. PostgreSQL: a binary COPY under a savepoint; SQLite:
    one executemany under a savepoint. Either is rolled back to when the primary key refuses
    a record; any other error is raised.
    """
    if not records:
        return True
    if connection.dialect.name == "postgresql":
        return await copy_records_unless_stored(
            connection,
            table.name,
            table.schema,
            [column.name for column in table.columns],
            sorted(records, key=_by_id),
        )
    await connection.exec_driver_sql("SAVEPOINT insert_unless_stored")
    try:
        await connection.exec_driver_sql(
            _sqlite_insert_sql(connection, table), _sqlite_values(connection, table, records)
        )
    except sa.exc.IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        await connection.exec_driver_sql("ROLLBACK TO SAVEPOINT insert_unless_stored")
        return False
    return True


async def _insert_copy(
    connection: AsyncConnection, table: sa.Table, records: Sequence[EventRecord]
) -> set[str]:
    """Look up which ids exist, then COPY the rest in binary.

    COPY has no ON CONFLICT, so the primary key is the guard: if another transaction
    commits one of these ids between the look-up and the COPY, the COPY fails with a unique
    violation, the whole group commit is retried, and the retry's look-up skips it.
    """
    existing = await connection.exec_driver_sql(
        f"SELECT t.id FROM {table.schema}.{table.name} t JOIN {keys_in_json('postgresql', 'id')}",
        (_ids_json(records),),
    )
    present = {row[0] for row in existing}
    # Sorted ids give concurrent writers the same lock order on the primary key.
    new = sorted((record for record in records if record[ID_AT] not in present), key=_by_id)
    if not new:
        return set()
    await copy_records(
        connection, table.name, table.schema, [column.name for column in table.columns], new
    )
    return {record[ID_AT] for record in new}


def _pg_array_type(column: sa.Column[Any]) -> str:
    # A TypeDecorator (UTCDateTime) names its underlying type in `impl`.
    kind = getattr(column.type, "impl", column.type)
    if is_json(column):
        return "text"  # sent as text, cast to jsonb in the SELECT
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.BigInteger | sa.Integer):
        return "int8"
    if isinstance(kind, sa.DateTime):
        return "timestamptz"
    return "text"


async def _insert_unnest(
    connection: AsyncConnection, table: sa.Table, records: Sequence[EventRecord]
) -> set[str]:
    """One `INSERT ... SELECT FROM unnest(<an array per column>) ON CONFLICT (id) DO NOTHING`:
    slower than COPY, but a racing writer's rows are skipped instead of failing it."""
    ordered = sorted(records, key=_by_id)
    # Column names come from the event models; `timestamp` and `type` need quoting.
    names = [f'"{column.name}"' for column in table.columns]
    selects = [
        f'"{column.name}"::jsonb' if is_json(column) else f'"{column.name}"'
        for column in table.columns
    ]
    arrays_sql = ", ".join(
        f"${n}::{_pg_array_type(column)}[]" for n, column in enumerate(table.columns, start=1)
    )
    result = await connection.exec_driver_sql(
        f"INSERT INTO {table.schema}.{table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(selects)} FROM unnest({arrays_sql}) AS u({', '.join(names)}) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        tuple(list(values) for values in zip(*ordered, strict=True)),
    )
    return {row[0] for row in result}


def _sqlite_insert_sql(connection: AsyncConnection, table: sa.Table, suffix: str = "") -> str:
    return sqlite_insert_sql(connection, table, [column.name for column in table.columns], suffix)


def _sqlite_values(
    connection: AsyncConnection, table: sa.Table, records: Sequence[EventRecord]
) -> list[EventRecord]:
    names = [column.name for column in table.columns]
    return sqlite_values(connection, table, names, list(records))


async def _insert_sqlite(
    connection: AsyncConnection, table: sa.Table, records: Sequence[EventRecord]
) -> set[str]:
    existing = {
        row[0]
        for row in await connection.exec_driver_sql(
            f"SELECT t.id FROM {table.schema}.{table.name} t JOIN {keys_in_json('sqlite', 'id')}",
            (_ids_json(records),),
        )
    }
    new = [record for record in records if record[ID_AT] not in existing]
    if new:
        await connection.exec_driver_sql(
            _sqlite_insert_sql(connection, table), _sqlite_values(connection, table, new)
        )
    return {record[ID_AT] for record in new}


async def _insert_sqlite_one_by_one(
    connection: AsyncConnection, table: sa.Table, records: Sequence[EventRecord]
) -> set[str]:
    """INSERT ... ON CONFLICT DO NOTHING record by record, reading each one's change count:
    for when another process (a second ingest worker) writes the same ids between look-up
    and insert."""
    statement = _sqlite_insert_sql(connection, table, " ON CONFLICT (id) DO NOTHING")
    inserted = set()
    for record in _sqlite_values(connection, table, records):
        if (await connection.exec_driver_sql(statement, record)).rowcount == 1:
            inserted.add(record[ID_AT])
    return inserted


async def rows_differing_from_stored(
    connection: AsyncConnection, table: sa.Table, records: Sequence[EventRecord]
) -> set[int]:
    """Positions of `records` whose id is stored with other content (a reused
    `sg_event_id`), as opposed to a resend of the same event. Only copies of one origin are
    compared: an event the webhook stored and the same event backfilled from Email Logs are
    told in different words, and are one event. PostgreSQL compares the JSON itself (jsonb
    equality ignores key order), so nothing is read back."""
    if not records:
        return set()
    if connection.dialect.name == "postgresql":
        # One JSON document of [position, id, raw, origin]; `raw` is JSON text already.
        quads = ",".join(
            f"[{n},{dump_json(record[ID_AT])},{record[RAW_AT]},{dump_json(record[ORIGIN_AT])}]"
            for n, record in enumerate(records)
        )
        result = await connection.exec_driver_sql(
            f"SELECT (u.row->>0)::int FROM jsonb_array_elements($1::text::jsonb) AS u(row) "
            f"JOIN {table.schema}.{table.name} t ON t.id = u.row->>1 "
            "WHERE t.raw <> u.row->2 AND t.origin = u.row->>3",
            (f"[{quads}]",),
        )
        return {row[0] for row in result}
    stored: dict[str, tuple[str, str]] = {}
    ids = sorted({record[ID_AT] for record in records})
    for start in range(0, len(ids), _SQLITE_CHUNK):
        chunk = ids[start : start + _SQLITE_CHUNK]
        result = await connection.execute(
            sa.select(table.c.id, table.c.raw, table.c.origin).where(table.c.id.in_(chunk))
        )
        stored |= {row_id: (canonical_json(raw), origin) for row_id, raw, origin in result}
    return {
        n
        for n, record in enumerate(records)
        if stored[record[ID_AT]][1] == record[ORIGIN_AT]
        and canonical_json(load_json(record[RAW_AT].encode())) != stored[record[ID_AT]][0]
    }


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
