"""A group commit is written again only after losing a race on a key: a unique violation or
a deadlock, told by the error's code on each backend, never by its wording. A write with no
look-up falls back to the look-up only on a key refused, never on another race."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import create_engine
from shared.db_errors import is_unique_violation, lost_write_race


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            async with connection.begin():
                await connection.exec_driver_sql(
                    "CREATE TEMPORARY TABLE race "
                    "(id TEXT PRIMARY KEY, v TEXT NOT NULL, u TEXT UNIQUE)"
                )
                await connection.exec_driver_sql("INSERT INTO race VALUES ('a', 'x', 'u1')")
            yield connection
    finally:
        await engine.dispose()


async def _error_of(connection: AsyncConnection, sql: str) -> sa.exc.DBAPIError:
    with pytest.raises(sa.exc.DBAPIError) as raised:
        async with connection.begin():
            await connection.exec_driver_sql(sql)
    return raised.value


async def test_a_key_stored_meanwhile_is_a_race(connection: AsyncConnection) -> None:
    primary_key = await _error_of(connection, "INSERT INTO race VALUES ('a', 'y', 'u2')")
    unique = await _error_of(connection, "INSERT INTO race VALUES ('b', 'y', 'u1')")

    assert lost_write_race(primary_key)
    assert lost_write_race(unique)
    assert is_unique_violation(primary_key)
    assert is_unique_violation(unique)


async def test_other_integrity_errors_are_not_a_race(connection: AsyncConnection) -> None:
    not_null = await _error_of(connection, "INSERT INTO race VALUES ('b', NULL, 'u2')")

    assert isinstance(not_null, sa.exc.IntegrityError)
    assert not lost_write_race(not_null)
    assert not is_unique_violation(not_null)


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_raw_copy_onto_a_stored_key_is_a_race(connection: AsyncConnection) -> None:
    """The event COPY goes to asyncpg itself, which raises its own errors."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    with pytest.raises(asyncpg.PostgresError) as raised:
        async with connection.begin():
            await driver.copy_records_to_table("race", records=[("a", "y", "u2")])

    assert lost_write_race(raised.value)
    assert is_unique_violation(raised.value)


def test_deadlocks_are_a_race_and_lookalike_wording_is_not() -> None:
    assert lost_write_race(asyncpg.DeadlockDetectedError("deadlock detected"))
    assert not lost_write_race(asyncpg.SerializationError("could not serialize"))
    assert not lost_write_race(sqlite3.OperationalError("deadlock on a unique key"))
    assert not lost_write_race(RuntimeError("unique deadlock"))


def test_a_deadlock_is_not_a_key_refused() -> None:
    """Both deadlocked writers' rows may be new: the group commit is written again, not
    sent down the look-up path."""
    assert not is_unique_violation(asyncpg.DeadlockDetectedError("deadlock detected"))
    assert not is_unique_violation(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_unique_violation(RuntimeError("unique violation"))


def test_a_stale_sqlite_snapshot_is_a_race_and_a_busy_database_is_not(tmp_path: Path) -> None:
    """A transaction that read, then finds another connection wrote since (WAL mode), is
    refused at once with SQLITE_BUSY_SNAPSHOT: written again, it sees the other write."""
    path = tmp_path / "race.db"
    first = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    second = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    first.execute("PRAGMA journal_mode=WAL")
    first.execute("CREATE TABLE t (x INTEGER)")
    first.execute("BEGIN")
    first.execute("SELECT count(*) FROM t").fetchall()
    second.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as stale:
        first.execute("INSERT INTO t VALUES (2)")
    first.execute("ROLLBACK")
    # A writer holding the lock longer than the busy timeout is not a race: not retried.
    second.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as busy:
        first.execute("INSERT INTO t VALUES (3)")
    second.execute("ROLLBACK")
    first.close()
    second.close()

    assert lost_write_race(stale.value)
    assert not lost_write_race(busy.value)
    # A stale snapshot refuses the write, not a key: no reason to look the ids up.
    assert not is_unique_violation(stale.value)
    assert not is_unique_violation(busy.value)
