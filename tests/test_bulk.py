"""The bulk write paths store each id once, whichever path a group commit takes, and write
values as SQLAlchemy would."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from shared.bulk_values import sqlite_datetime_text
from shared.column_types import UTCDateTime
from shared.db import sqlite_schema_path
from shared.db_errors import is_unique_violation, lost_write_race
from shared.event_inserts import insert_all_unless_stored, insert_new_rows
from shared.event_parsing import parse_body
from shared.tables import source_tables
from tests.webhook_helpers import body_of, new_source

pytestmark = pytest.mark.usefixtures("sendgrid")

SQLITE = sqlite.dialect()


def delivered(n: int) -> dict[str, object]:
    return {"event": "delivered", "email": f"u{n}@example.com", "timestamp": 1700000000 + n,
            "sg_event_id": f"bulk-{n}", "category": ["a"], "tls": 1, "userid": str(n)}  # fmt: skip


@pytest.mark.parametrize("contended", [False, True], ids=["copy", "on-conflict"])
async def test_insert_new_rows_returns_only_ids_not_stored_before(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, contended: bool
) -> None:
    source = await new_source(ingest)
    schema = source["schema"]
    table = source_tables(schema).events["delivered"]
    now = datetime.now(UTC)
    first = parse_body(body_of([delivered(n) for n in range(3)]), now).rows["delivered"]
    second = parse_body(body_of([delivered(n) for n in range(1, 5)]), now).rows["delivered"]
    engine = ingest_app.state.engine
    async with engine.begin() as connection:
        assert await insert_new_rows(connection, table, first) == {"bulk-0", "bulk-1", "bulk-2"}
    async with engine.begin() as connection:
        new = await insert_new_rows(connection, table, second, contended=contended)
    assert new == {"bulk-3", "bulk-4"}
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(table).order_by(table.c.id))).all()
    assert [row.id for row in rows] == [f"bulk-{n}" for n in range(5)]
    assert rows[4].tls is True
    assert rows[4].category == ["a"]
    assert rows[4].custom_args == {"userid": "4"}


async def test_insert_all_unless_stored_inserts_every_record_or_none(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    table = source_tables(source["schema"]).events["delivered"]
    now = datetime.now(UTC)
    first = parse_body(body_of([delivered(n) for n in range(3)]), now).rows["delivered"]
    overlapping = parse_body(body_of([delivered(n) for n in range(2, 6)]), now).rows["delivered"]
    new = parse_body(body_of([delivered(n) for n in range(6, 8)]), now).rows["delivered"]
    engine = ingest_app.state.engine
    async with engine.begin() as connection:
        assert await insert_all_unless_stored(connection, table, first)
    async with engine.begin() as connection:
        # bulk-2 is stored: refused whole, and the transaction goes on after the refusal.
        assert not await insert_all_unless_stored(connection, table, overlapping)
        assert await insert_all_unless_stored(connection, table, new)
        assert await insert_new_rows(connection, table, overlapping) == {
            f"bulk-{n}" for n in (3, 4, 5)
        }
    async with engine.connect() as connection:
        ids = (await connection.scalars(sa.select(table.c.id).order_by(table.c.id))).all()
    assert ids == [f"bulk-{n}" for n in range(8)]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_stale_sqlite_snapshot_is_raised_for_a_retry_not_taken_for_a_stored_id(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, database_url: str
) -> None:
    """Another connection wrote the file after this transaction read it: SQLite refuses
    the write (SQLITE_BUSY_SNAPSHOT) whatever the ids. That is raised, for the group commit
    to be written again, not answered as "an id is stored" and sent down the look-up path."""
    source = await new_source(ingest)
    table = source_tables(source["schema"]).events["delivered"]
    now = datetime.now(UTC)
    records = parse_body(body_of([delivered(n) for n in range(3)]), now).rows["delivered"]
    async with ingest_app.state.engine.begin() as connection:
        await connection.exec_driver_sql("SAVEPOINT reader")  # begins the transaction
        await connection.scalar(sa.select(sa.func.count()).select_from(table))
        other = sqlite3.connect(sqlite_schema_path(database_url, source["schema"]))
        other.execute("CREATE TABLE written_meanwhile (x INTEGER)")  # same file
        other.commit()
        other.close()
        with pytest.raises(sa.exc.OperationalError) as raised:
            await insert_all_unless_stored(connection, table, records)
        await connection.rollback()

    assert lost_write_race(raised.value)
    assert not is_unique_violation(raised.value)


async def test_a_source_meeting_stored_ids_is_looked_up_first_until_its_resends_stop(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    """Every batch sent twice: the writes meet stored ids, and the source's rows go the
    look-up way; then fresh batches only: back to inserting with no look-up. Every count
    is exact on either path."""
    source = await new_source(ingest)
    paths = ingest_app.state.writer.paths
    assert paths.optimistic(source["schema"])
    for start in range(0, 100, 10):
        body = body_of([delivered(n) for n in range(start, start + 10)])
        assert (await ingest.post(source["path"], content=body)).json()["stored"] == 10
        assert (await ingest.post(source["path"], content=body)).json()["duplicates"] == 10
    assert not paths.optimistic(source["schema"])
    for start in range(100, 400, 10):
        body = body_of([delivered(n) for n in range(start, start + 10)])
        assert (await ingest.post(source["path"], content=body)).json()["stored"] == 10
    assert paths.optimistic(source["schema"])
    async with ingest_app.state.engine.connect() as connection:
        stored = await connection.scalar(sa.select(sa.func.count()).select_from(
            source_tables(source["schema"]).events["delivered"]))  # fmt: skip
    assert stored == 400


@given(st.datetimes(timezones=st.sampled_from([UTC, None])))
def test_sqlite_datetime_text_is_sqlalchemys(moment: datetime) -> None:
    process = UTCDateTime.dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process is not None
    convert = sqlite_datetime_text(process)
    assert convert(moment) == process(moment)
    assert convert(moment) == process(moment)  # the kept text of the last value
    assert convert(None) is None
