"""The plain bulk insert of each backend, for both services' write paths: a binary COPY on
PostgreSQL, one prepared INSERT run by executemany on SQLite.

Records are value tuples in the order of the columns given, JSON values already as text
(see bulk_values), so neither path converts anything per value that the backend does not
need converted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.bulk_values import converted, dialect_converters


async def copy_records(
    connection: AsyncConnection,
    table: str,
    schema: str | None,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> None:
    """Binary COPY of `records` into `schema.table` through asyncpg, inside the transaction
    `connection.begin()` opened. Does nothing when there are no records."""
    if not records:
        return
    driver = await _driver_in_transaction(connection)
    await driver.copy_records_to_table(
        table, schema_name=schema, records=records, columns=list(columns)
    )


async def copy_records_unless_stored(
    connection: AsyncConnection,
    table: str,
    schema: str | None,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> bool:
    """`copy_records` of all `records`, or of none when the table's primary key or a unique
    index refuses one of them: the COPY runs under a savepoint, rolled back to on a unique
    violation (False). Any other error is raised, as by `copy_records`."""
    if not records:
        return True
    driver = await _driver_in_transaction(connection)
    await driver.execute("SAVEPOINT copy_unless_stored")
    try:
        await driver.copy_records_to_table(
            table, schema_name=schema, records=records, columns=list(columns)
        )
    except asyncpg.UniqueViolationError:
        await driver.execute("ROLLBACK TO SAVEPOINT copy_unless_stored")
        return False
    # Not released: the savepoint ends with the transaction, and a RELEASE would cost a
    # round trip per table.
    return True


async def _driver_in_transaction(connection: AsyncConnection) -> Any:
    """asyncpg's connection under `connection`, inside the transaction it began."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # asyncpg's connection, inside a `connection.begin()`
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it runs;
        # a raw COPY before that would commit on its own, outside the transaction (and into
        # a staging table that empties on commit).
        await connection.exec_driver_sql("SELECT 1")
    return driver


def sqlite_insert_sql(
    connection: AsyncConnection, table: sa.Table, columns: Sequence[str], suffix: str = ""
) -> str:
    """`INSERT INTO table (columns) VALUES (?, ...)` plus `suffix` (an ON CONFLICT clause),
    for executemany."""
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    placeholders = ", ".join("?" for _ in columns)
    return f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({placeholders}){suffix}"


def sqlite_values(
    connection: AsyncConnection,
    table: sa.Table,
    columns: Sequence[str],
    records: list[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """The records as SQLite takes them: the dialect's own conversions applied (datetimes
    as text), where a column has one; `records` itself when none has."""
    return converted(records, dialect_converters(table, columns, connection.dialect))
