"""Events into ClickHouse (WAREHOUSE_URL=clickhouse://...): the tables and view, the
receiver's exactly-once writes, and its answers. Runs on the throwaway ClickHouse server
`scripts/test` starts, the control tables on SQLite and PostgreSQL as everywhere; every
statement also runs on a current engine (tests/clickhouse/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ingest_service.app import create_app as create_ingest_app
from shared.clickhouse import ClickHouse, ClickHouseTarget
from shared.clickhouse_event_rows import ClickHouseEventRows
from shared.clickhouse_layout import local_name
from shared.clickhouse_tables import column_type
from shared.event_store import store_events
from shared.settings import ConfigurationError, Settings, load_settings
from shared.tables import source_tables
from tests.clickhouse.conftest import _CurrentEngine, on_both
from tests.conftest import admin_client
from tests.webhook_helpers import body_of, new_source, rows, sample_events

pytestmark = pytest.mark.usefixtures("sendgrid")


def event(n: int, kind: str = "delivered", **extra: Any) -> dict[str, Any]:
    return {
        "email": f"user{n}@example.com",
        "event": kind,
        "timestamp": 1700000000 + n * 86400,  # spread over months: several partitions
        "sg_event_id": f"evt-{kind}-{n}",
        "sg_message_id": f"msg{n}.recvd-1",
        **extra,
    }


@pytest.fixture
def warehouse_settings(settings: Settings, clickhouse_url: str) -> Settings:
    return settings.model_copy(update={"WAREHOUSE_URL": clickhouse_url})


@pytest.fixture
async def receiver(
    warehouse_settings: Settings, both_engines: _CurrentEngine
) -> AsyncIterator[FastAPI]:
    app = create_ingest_app(warehouse_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(receiver: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(receiver) as client:
        yield client


async def one(clickhouse: ClickHouse, sql: str) -> Any:
    return (await clickhouse.execute(sql))[0][0]


async def test_every_event_column_has_its_clickhouse_type(
    client: httpx.AsyncClient, clickhouse: ClickHouse, source_name: str
) -> None:
    source = await new_source(client, source_name)
    schema = source["schema"]
    # A source's database and tables are made by its first write.
    assert (await client.post(source["path"], content=body_of(sample_events()))).status_code == 200
    tables = source_tables(schema)
    columns: dict[str, list[tuple[str, str]]] = {}
    for name in [*tables.events, "activity"]:
        described = await clickhouse.execute(f"DESCRIBE TABLE `{schema}`.`{name}`")
        columns[name] = [(column, kind) for column, kind, *_ in described]
    for name, table in tables.events.items():
        assert columns[name] == [(c.name, column_type(c)) for c in table.columns], name
    timestamp_types = {kind for _, kind in columns["delivered"] if kind.startswith("DateTime")}
    assert timestamp_types == {"DateTime('UTC')"}
    engines = await clickhouse.execute(
        "SELECT name, engine, sorting_key, partition_key FROM system.tables "
        "WHERE database = %(db)s ORDER BY name",
        {"db": schema},
    )
    # Each table's own engine and keys; the sync's object tables are made with the event
    # tables (test_clickhouse_objects.py).
    own = {n: ("ReplacingMergeTree", "id", "toYYYYMM(timestamp)") for n in tables.events}
    for n, t in tables.objects.items():
        own[n] = ("ReplacingMergeTree", ", ".join(c.name for c in t.primary_key.columns), "")
    if clickhouse.target.cluster is None:
        expected = [(n, *engine) for n, engine in own.items()]
    else:
        # The product's names are Distributed tables over each shard's local table (this
        # server is a shard too).
        expected = [(n, "Distributed", "", "") for n in own]
        expected += [(local_name(n), *engine) for n, engine in own.items()]
    assert sorted(engines) == sorted([*expected, ("activity", "View", "", "")])
    # The view has every column of every table, once.
    every = {c.name for t in tables.events.values() for c in t.columns}
    assert {name for name, _ in columns["activity"]} == every
    assert len(columns["activity"]) == len(every)


async def test_receiver_stores_each_event_once_and_keeps_a_reused_id(
    client: httpx.AsyncClient,
    clickhouse: ClickHouse,
    source_name: str,
    both_engines: _CurrentEngine,
) -> None:
    source = await new_source(client, source_name)
    schema = source["schema"]
    first = await client.post(source["path"], content=body_of([event(1), event(2), event(1)]))
    assert first.json() == {"stored": 2, "duplicates": 1, "rejected": 0}
    # The same id with other content: SendGrid reused an sg_event_id; both events are kept.
    reused = event(2, email="someone-else@example.com")
    again = await client.post(source["path"], content=body_of([event(2), event(3), reused]))
    assert again.json() == {"stored": 2, "duplicates": 1, "rejected": 0}
    emails = dict(await clickhouse.execute(f"SELECT id, email FROM `{schema}`.delivered FINAL"))
    rekeyed = [i for i in emails if i.startswith("evt-delivered-2#")]
    assert sorted(emails) == sorted(
        ["evt-delivered-1", "evt-delivered-2", "evt-delivered-3", *rekeyed]
    )
    assert [emails[i] for i in rekeyed] == ["someone-else@example.com"]
    assert emails["evt-delivered-2"] == "user2@example.com"
    assert await one(clickhouse, f"SELECT count() FROM `{schema}`.activity") == 4
    # Every type of SendGrid's samples lands in its table, and in the view once.
    samples = await client.post(source["path"], content=body_of(sample_events()))
    assert samples.status_code == 200
    stored = samples.json()["stored"]
    assert stored > 0
    assert await one(clickhouse, f"SELECT count() FROM `{schema}`.activity") == 4 + stored
    summary = (await client.get(f"/sources/{source['id']}")).json()["webhook"]
    assert summary["events_stored"] == 4 + stored
    assert summary["duplicates_absorbed"] == 2
    # Every statement went to the current engine too: DDL, look-ups and inserts.
    sent = " ".join(both_engines.statements)
    for kind in ("CREATE TABLE", "CREATE VIEW", "SELECT id FROM", "INSERT INTO"):
        assert kind in sent


async def test_times_clickhouse_cannot_hold_are_kept_in_rejected(
    client: httpx.AsyncClient, receiver: FastAPI, clickhouse: ClickHouse, source_name: str
) -> None:
    source = await new_source(client, source_name)
    before_1970, after_2106 = event(1, timestamp=-86400), event(2, timestamp=4_400_000_000)
    answer = await client.post(source["path"], content=body_of([before_1970, event(3), after_2106]))
    assert answer.json() == {"stored": 1, "duplicates": 0, "rejected": 2}
    kept = await rows(receiver, source["schema"], "rejected")
    assert sorted(json.loads(row["payload"])["sg_event_id"] for row in kept) == [
        "evt-delivered-1",
        "evt-delivered-2",
    ]
    assert {row["reason"] for row in kept} == {
        "timestamp outside what the ClickHouse warehouse stores (1970-01-01 to 2106-02-07 UTC)"
    }
    assert {row["event"] for row in kept} == {"delivered"}
    assert await one(clickhouse, f"SELECT count() FROM `{source['schema']}`.activity") == 1


async def test_backfilled_events_join_the_webhooks_once(
    client: httpx.AsyncClient,
    receiver: FastAPI,
    clickhouse: ClickHouse,
    clickhouse_url: str,
    both_engines: _CurrentEngine,
    source_name: str,
) -> None:
    """Email Logs backfills write through the same validation and exactly-once step: an
    event the webhook stored is a duplicate however the logs word it; the rest is stored
    with origin `backfill`."""
    source = await new_source(client, source_name)
    schema = source["schema"]
    await client.post(source["path"], content=body_of([event(1), event(2)]))
    connection = on_both(both_engines)(clickhouse_url)
    try:
        counts = await store_events(
            receiver.state.engine,
            schema,
            [event(1, ip="192.0.2.1"), event(3), event(4, timestamp=-1)],
            origin="backfill",
            received_at=datetime.now(UTC),
            clickhouse=ClickHouseEventRows(connection),
        )
    finally:
        await connection.close()
    assert (counts.stored, counts.duplicates, counts.rejected) == (1, 1, 1)
    origins = await clickhouse.execute(f"SELECT id, origin FROM `{schema}`.activity ORDER BY id")
    assert origins == [
        ("evt-delivered-1", "webhook"),
        ("evt-delivered-2", "webhook"),
        ("evt-delivered-3", "backfill"),
    ]


async def test_a_source_deleted_with_its_data_drops_its_database(
    client: httpx.AsyncClient, clickhouse: ClickHouse, source_name: str
) -> None:
    source = await new_source(client, source_name)
    await client.post(source["path"], content=body_of([event(1), event(2)]))
    renamed = await client.patch(f"/sources/{source['id']}", json={"name": source_name + " b"})
    assert renamed.status_code == 409
    assert "its events are in ClickHouse" in renamed.text
    dropped = await client.delete(f"/sources/{source['id']}", params={"drop_data": "true"})
    assert dropped.status_code == 204
    databases = "SELECT count() FROM system.databases WHERE name = %(name)s"
    assert (await clickhouse.execute(databases, {"name": source["schema"]}))[0][0] == 0
    # The name again: a new source, none of the old one's events (this receiver made the
    # old database, and makes the new one).
    again = await new_source(client, source_name)
    assert again["schema"] == source["schema"]
    answer = await client.post(again["path"], content=body_of([event(1)]))
    assert answer.json() == {"stored": 1, "duplicates": 0, "rejected": 0}
    assert await one(clickhouse, f"SELECT count() FROM `{again['schema']}`.activity") == 1


async def test_a_batch_over_many_months_is_stored_whole(
    client: httpx.AsyncClient, clickhouse: ClickHouse, source_name: str
) -> None:
    """Current releases refuse an INSERT into more than 100 partitions; a batch spanning 130
    months (an old backlog, or a sender's clock gone wrong) is inserted in blocks."""
    source = await new_source(client, source_name)
    months = [event(n, timestamp=1_500_000_000 + n * 31 * 86400) for n in range(130)]
    answer = await client.post(source["path"], content=body_of(months))
    assert answer.json() == {"stored": 130, "duplicates": 0, "rejected": 0}
    schema = source["schema"]
    assert (
        await one(clickhouse, f"SELECT uniqExact(toYYYYMM(`timestamp`)) FROM `{schema}`.delivered")
        == 130
    )
    assert await one(clickhouse, f"SELECT count() FROM `{schema}`.activity") == 130


async def test_concurrent_resends_leave_one_row_per_event(
    client: httpx.AsyncClient, clickhouse: ClickHouse, source_name: str
) -> None:
    source = await new_source(client, source_name)
    schema = source["schema"]
    kinds = ("delivered", "processed", "open", "click")
    batches = [
        [event(n, kinds[n % 4]) for n in range(start, start + 50)] for start in range(0, 200, 50)
    ]
    # Every batch sent three times, all at once: SendGrid's retries overlapping each other.
    bodies = [body_of(batch) for batch in batches for _ in range(3)]
    answers = await asyncio.gather(*(client.post(source["path"], content=b) for b in bodies))
    assert {a.status_code for a in answers} == {200}
    totals = [sum(a.json()[key] for a in answers) for key in ("stored", "duplicates")]
    assert totals == [200, 400]
    for table in ("delivered", "processed", "_open", "click"):
        assert await one(clickhouse, f"SELECT count() FROM `{schema}`.`{table}`") == 50
    assert await one(clickhouse, f"SELECT count() FROM `{schema}`.activity") == 200
    assert await one(clickhouse, f"SELECT uniqExact(id) FROM `{schema}`.activity") == 200


# Receivers in parallel share a PostgreSQL control database (SQLite takes one writer).
@pytest.mark.parametrize("backend", ["postgres"])
async def test_two_receivers_racing_on_one_resend_still_count_each_event_once(
    warehouse_settings: Settings,
    both_engines: _CurrentEngine,
    clickhouse: ClickHouse,
    source_name: str,
) -> None:
    """Receivers share nothing but the databases, and write each table in its turn
    (shared.event_table_turns): the second finds the first's ids stored. A copy that slipped
    in anyway would be merged by the sorting key, and shown once by the view (FINAL) until then
    (tests/clickhouse/test_clickhouse_reads.py stores such copies)."""
    first, second = create_ingest_app(warehouse_settings), create_ingest_app(warehouse_settings)
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
        admin_client(first) as one_client,
        admin_client(second) as other_client,
    ):
        source = await new_source(one_client, source_name)
        schema = source["schema"]
        bodies = [body_of([event(n, "open") for n in range(s, s + 25)]) for s in (0, 25, 50)]
        answers = await asyncio.gather(
            *(c.post(source["path"], content=b) for b in bodies for c in (one_client, other_client))
        )
        assert {a.status_code for a in answers} == {200}
        assert await one(clickhouse, f"SELECT count() FROM `{schema}`.activity") == 75
        assert await one(clickhouse, f"SELECT count() FROM `{schema}`.`_open` FINAL") == 75
        assert await one(clickhouse, f"SELECT count() FROM `{schema}`.`_open`") == 75
        answered = [a.json() for a in answers]
        assert sum(a["stored"] for a in answered) == 75
        assert sum(a["duplicates"] for a in answered) == 75


async def test_receiver_answers_503_until_clickhouse_took_the_events(
    settings: Settings, clickhouse: ClickHouse, clickhouse_url: str, source_name: str
) -> None:
    """Events a down ClickHouse did not acknowledge are answered 503, so SendGrid resends;
    the resend to a working warehouse stores them once."""
    nowhere = re.sub(r"//[^/]+/", "//127.0.0.1:1/", clickhouse_url)
    down = settings.model_copy(update={"WAREHOUSE_URL": nowhere})
    broken = create_ingest_app(down)
    async with broken.router.lifespan_context(broken), admin_client(broken) as client:
        source = await new_source(client, source_name)
        refused = await client.post(source["path"], content=body_of([event(1), event(2)]))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["detail"].startswith("warehouse: ")
    working = create_ingest_app(settings.model_copy(update={"WAREHOUSE_URL": clickhouse_url}))
    async with working.router.lifespan_context(working), admin_client(working) as client:
        assert (await client.get("/readyz")).json() == {"status": "ok", "detail": None}
        resent = await client.post(source["path"], content=body_of([event(1), event(2)]))
        assert resent.json() == {"stored": 2, "duplicates": 0, "rejected": 0}
    assert await one(clickhouse, f"SELECT count() FROM `{source['schema']}`.activity") == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://elsewhere/db", "must be clickhouse://host:port/database"),
        ("clickhouse://", "names no host"),
        ("clickhouse://host:port/db", "port that is not a number"),
        ("clickhouse://host:9000/a/b", "is not one database name"),
        ("clickhouse://host:9000/db?cluster=a-b", "names the cluster 'a-b': give one name"),
        ("clickhouse://host:9000/db?cluster=", "names the cluster '': give one name"),
        ("clickhouse://host:9000/db?cluster=a&cluster=b", "names the cluster 'a&b'"),
        ("clickhouse://host:9000/db?shards=2", "unknown parameters ['shards']"),
        ("clickhouse://host:9000/db?cluster", "is not name=value pairs"),
    ],
)
def test_warehouse_url_is_refused_with_what_to_fix(url: str, message: str, tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="WAREHOUSE_URL") as refused:
        load_settings(WAREHOUSE_URL=url, DATA_DIR=tmp_path)
    assert message in str(refused.value)


def test_warehouse_url_defaults_to_the_database(tmp_path: Any) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    assert load_settings(DATA_DIR=tmp_path).clickhouse_url is None
    same = load_settings(DATA_DIR=tmp_path, DATABASE_URL=database, WAREHOUSE_URL=database)
    assert same.clickhouse_url is None
    url = "clickhouse://u:p@ch.internal:9440/events"
    assert load_settings(DATA_DIR=tmp_path, WAREHOUSE_URL=url).clickhouse_url == url
    sharded = url + "?cluster=events_2x"
    assert load_settings(DATA_DIR=tmp_path, WAREHOUSE_URL=sharded).clickhouse_url == sharded
    assert ClickHouseTarget.from_url(sharded).cluster == "events_2x"
    assert ClickHouseTarget.from_url(url).cluster is None
