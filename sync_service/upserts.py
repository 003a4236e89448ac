"""Writing synced objects: insert-or-update in place, and soft deletion after full listings.

No statement is compiled per page. PostgreSQL: the page is COPYed (binary) into a staging
table that lives for the transaction, then merged with one INSERT ... SELECT ... ON CONFLICT.
SQLite: one prepared INSERT ... ON CONFLICT, run over the page by the driver's executemany.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import dump_json

# Rows per page (one transaction) for collections read in bulk, i.e. the contacts export.
# Neither path binds a parameter per value, so no backend limit applies; 5,000 rows of the
# widest table are a few MB.
BATCH_SIZE = 5000

_STAGE = "_sync_stage"


def _json_or_none(value: Any) -> str | None:
    return None if value is None else dump_json(value)


def _records(
    rows: Sequence[dict[str, Any]],
    columns: list[str],
    processors: Sequence[Callable[[Any], Any] | None],
) -> list[tuple[Any, ...]]:
    pairs = list(zip(columns, processors, strict=True))
    return [
        tuple(row[name] if process is None else process(row[name]) for name, process in pairs)
        for row in rows
    ]


async def _merge_through_copy(
    connection: AsyncConnection, table: sa.Table, keys: list[str], rows: Sequence[dict[str, Any]]
) -> None:
    preparer = connection.dialect.identifier_preparer
    target = preparer.format_table(table)
    columns = [column.name for column in table.columns]
    # asyncpg encodes everything natively except JSON, which it takes as text.
    processors = [_json_or_none if isinstance(c.type, sa.JSON) else None for c in table.columns]
    await connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_STAGE} (LIKE {target}) ON COMMIT DROP"
    )
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # asyncpg's connection, inside the transaction SQLAlchemy began
    await driver.copy_records_to_table(
        _STAGE, records=_records(rows, columns, processors), columns=columns
    )
    names = ", ".join(preparer.quote(name) for name in columns)
    updates = ", ".join(
        f"{preparer.quote(name)} = EXCLUDED.{preparer.quote(name)}"
        for name in columns
        if name not in keys
    )
    await connection.exec_driver_sql(
        f"INSERT INTO {target} ({names}) SELECT {names} FROM {_STAGE} "
        f"ON CONFLICT ({', '.join(preparer.quote(key) for key in keys)}) DO UPDATE SET {updates}"
    )
    await connection.exec_driver_sql(f"DROP TABLE {_STAGE}")  # another page may follow


async def _sqlite_executemany(
    connection: AsyncConnection, table: sa.Table, keys: list[str], rows: Sequence[dict[str, Any]]
) -> None:
    dialect = connection.dialect
    preparer = dialect.identifier_preparer
    columns = [column.name for column in table.columns]
    # The dialect's own conversions (datetimes as its text format), JSON through orjson.
    processors = [
        _json_or_none
        if isinstance(column.type, sa.JSON)
        else column.type.dialect_impl(dialect).bind_processor(dialect)
        for column in table.columns
    ]
    names = ", ".join(preparer.quote(name) for name in columns)
    updates = ", ".join(
        f"{preparer.quote(name)} = excluded.{preparer.quote(name)}"
        for name in columns
        if name not in keys
    )
    statement = (
        f"INSERT INTO {preparer.format_table(table)} ({names}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(preparer.quote(key) for key in keys)}) DO UPDATE SET {updates}"
    )
    # Through SQLAlchemy's connection, so the transaction it opened covers the page.
    await connection.exec_driver_sql(statement, _records(rows, columns, processors))


async def upsert_rows(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> int:
    """Insert rows, or update them in place by primary key (clearing `deleted_at`).

    Returns how many distinct objects were written.
    """
    if not rows:
        return 0
    keys = [column.name for column in table.primary_key.columns]
    # PostgreSQL refuses to update one row twice in a statement; the last copy is the newest.
    rows = list({tuple(row[key] for key in keys): row for row in rows}.values())
    if connection.dialect.name == "postgresql":
        await _merge_through_copy(connection, table, keys, rows)
    else:
        await _sqlite_executemany(connection, table, keys, rows)
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
