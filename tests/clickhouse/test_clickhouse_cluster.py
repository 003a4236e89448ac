"""Events on a ClickHouse cluster of two shards (WAREHOUSE_URL=clickhouse://...?cluster=NAME):
where the rows land, the DDL on a current engine, and a shard going down and coming back.

The cluster is the one scripts/test starts (two Debian 18.16 servers, no ZooKeeper); every
other ClickHouse test runs on it too (tests/clickhouse/conftest.py `clickhouse_url`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI

from ingest_service.app import create_app as create_ingest_app
from shared.clickhouse import ClickHouse
from shared.clickhouse_layout import local_name, table_statements
from shared.clickhouse_shards import cluster_shards
from shared.clickhouse_tables import source_database_statements
from shared.settings import Settings
from shared.tables import source_tables
from tests.clickhouse.conftest import (
    ShardServer,
    _CurrentEngine,
    clickhouse_cluster_url,
    on_both,
    stop_merges,
)
from tests.conftest import admin_client
from tests.webhook_helpers import body_of, new_source

pytestmark = pytest.mark.usefixtures("sendgrid")

KINDS = ("delivered", "processed", "open", "click")
TABLES = ("delivered", "processed", "_open", "click")  # theirs


def events(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "email": f"user{n}@example.com",
            "event": KINDS[n % len(KINDS)],
            "timestamp": 1700000000 + n * 3600,
            "sg_event_id": f"evt-{n}",
            "sg_message_id": f"msg{n}.recvd-1",
        }
        for n in range(start, start + count)
    ]


@pytest.fixture
def cluster_url() -> str:
    return clickhouse_cluster_url()


@pytest.fixture
async def shards(cluster_url: str) -> AsyncIterator[list[ClickHouse]]:
    """A connection to each shard's server, for reading its local tables."""
    entry = ClickHouse(cluster_url)
    target = entry.target
    assert target.cluster is not None
    try:
        listed = await cluster_shards(entry, target.cluster)
    finally:
        await entry.close()
    assert len(listed) == 2
    connections = [ClickHouse(target.at(shard.host, shard.port)) for shard in listed]
    yield connections
    for connection in connections:
        await connection.close()


async def per_shard(shards: list[ClickHouse], sql: str) -> list[Any]:
    return [(await shard.execute(sql))[0][0] for shard in shards]


async def one(clickhouse: ClickHouse, sql: str) -> Any:
    return (await clickhouse.execute(sql))[0][0]


@pytest.fixture
async def client(
    settings: Settings, cluster_url: str, both_engines: _CurrentEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_ingest_app(settings.model_copy(update={"WAREHOUSE_URL": cluster_url}))
    async with app.router.lifespan_context(app), admin_client(app) as client:
        yield client


async def test_rows_are_split_over_both_shards_and_counted_once(
    client: httpx.AsyncClient, shards: list[ClickHouse], cluster_url: str, source_name: str
) -> None:
    source = await new_source(client, source_name)
    schema = source["schema"]
    answer = await client.post(source["path"], content=body_of(events(0, 400)))
    assert answer.json() == {"stored": 400, "duplicates": 0, "rejected": 0}
    for table in TABLES:
        on_each = await per_shard(shards, f"SELECT count() FROM `{schema}`.`{local_name(table)}`")
        assert all(count > 0 for count in on_each), (table, on_each)
        assert sum(on_each) == 100
    entry = ClickHouse(cluster_url)
    try:
        assert await one(entry, f"SELECT count() FROM `{schema}`.activity") == 400
        # The database, local tables, Distributed tables and view are on each shard: either
        # can take the product's queries.
        for shard in shards:
            names = {
                name
                for (name,) in await shard.execute(
                    "SELECT name FROM system.tables WHERE database = %(db)s", {"db": schema}
                )
            }
            assert {"delivered", local_name("delivered"), "activity"} <= names
    finally:
        await entry.close()


async def test_every_copy_of_an_id_lands_on_one_shard(
    client: httpx.AsyncClient,
    shards: list[ClickHouse],
    cluster_url: str,
    both_engines: _CurrentEngine,
    source_name: str,
) -> None:
    """Copies of a row (two receivers storing one resend) share the shard its id hashes to,
    where ReplacingMergeTree merges them; FINAL through the Distributed table counts each
    row once."""
    source = await new_source(client, source_name)
    schema = source["schema"]
    await client.post(source["path"], content=body_of(events(0, 200)))
    resent = await client.post(source["path"], content=body_of(events(0, 200)))
    assert resent.json() == {"stored": 0, "duplicates": 200, "rejected": 0}
    connection = on_both(both_engines)(cluster_url)
    try:
        await stop_merges(connection, schema, "delivered")
        name = f"`{schema}`.`delivered`"
        # A second copy of every row, inserted through the Distributed table.
        await connection.execute(f"INSERT INTO {name} SELECT * FROM {name}")
        assert await one(connection, f"SELECT count() FROM {name}") == 100
        assert await one(connection, f"SELECT count() FROM {name} FINAL") == 50
    finally:
        await connection.close()
    local = f"`{schema}`.`{local_name('delivered')}`"
    holders: dict[str, list[int]] = {}
    for n, shard in enumerate(shards):
        for row_id, copies in await shard.execute(f"SELECT id, count() FROM {local} GROUP BY id"):
            assert copies == 2, row_id
            holders.setdefault(row_id, []).append(n)
    assert len(holders) == 50
    assert all(len(on) == 1 for on in holders.values())
    assert {on[0] for on in holders.values()} == {0, 1}


def test_the_cluster_ddl_on_a_current_engine(current_engine: _CurrentEngine) -> None:
    """A current engine (chdb) has no cluster, so it cannot create a Distributed table: it
    runs each shard's local tables and the queries on them, and parses the Distributed DDL
    (EXPLAIN AST). Debian's 18.16 runs it all on the real cluster in the other tests."""
    schema = "cluster_ddl_check"
    statements = source_database_statements(schema, "sendgrid_shards")
    local = [s.sql for s in statements if s.shards_only]
    distributed = [s.sql for s in statements if "ENGINE = Distributed(" in s.sql]
    assert len(local) == len(distributed) == len(source_tables(schema).events)
    assert all("sipHash64(`id`)" in sql for sql in distributed)
    current_engine.run(statements[0].sql)
    for sql in local:
        current_engine.run(sql)
    for sql in distributed:
        current_engine.run(f"EXPLAIN AST {sql}")
        with pytest.raises(Exception, match="sendgrid_shards"):
            current_engine.run(sql)  # "Requested cluster ... not found": none to make
    current_engine.run(
        f"INSERT INTO `{schema}`.`{local_name('delivered')}` (id, email, event, `timestamp`, "
        "received_at, origin, raw) VALUES ('a', 'x@example.com', 'delivered', "
        "'2026-03-01 00:00:00', '2026-03-01 00:00:00', 'webhook', '{}')"
    )
    counted = current_engine.run(
        f"SELECT count() FROM `{schema}`.`{local_name('delivered')}` FINAL "
        "WHERE `timestamp` >= toDateTime(0)"
    )
    assert [[int(v) for v in row] for row in counted] == [[1]]


def test_a_table_keyed_otherwise_is_sharded_by_its_key() -> None:
    """Tables not keyed by `id` (synced objects with a version) go through the same layout:
    sharded by their whole sorting key, so each key's versions meet on one shard."""
    columns = [("list_id", "String"), ("contact_id", "String"), ("version", "UInt64")]
    single = table_statements(
        None,
        "db",
        "members",
        columns,
        "ReplacingMergeTree(version)",
        order_by=["list_id", "contact_id"],
    )
    assert [s.sql.split(") ENGINE = ")[1] for s in single] == [
        "ReplacingMergeTree(version) ORDER BY (`list_id`, `contact_id`)"
    ]
    sharded = table_statements(
        "two",
        "db",
        "members",
        columns,
        "ReplacingMergeTree(version)",
        order_by=["list_id", "contact_id"],
    )
    assert [(s.shards_only, s.sql.split(") ENGINE = ")[1]) for s in sharded] == [
        (True, "ReplacingMergeTree(version) ORDER BY (`list_id`, `contact_id`)"),
        (False, "Distributed('two', 'db', 'members_local', sipHash64(`list_id`, `contact_id`))"),
    ]


class _StopsShardBeforeInsert(ClickHouse):
    """The receiver's connection; `before_insert[n]` runs just before its n-th insert (from
    0), after the ids were looked up."""

    before_insert: ClassVar[dict[int, Callable[[], None]]] = {}
    inserts: ClassVar[int] = 0

    async def insert(self, sql: str, rows: Any) -> None:
        hook = _StopsShardBeforeInsert.before_insert.pop(_StopsShardBeforeInsert.inserts, None)
        _StopsShardBeforeInsert.inserts += 1
        if hook is not None:
            await asyncio.to_thread(hook)
        await super().insert(sql, rows)


@pytest.fixture
async def receiver(
    settings: Settings, cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    # Not on both engines: the cluster keeps part of a failed write, which chdb would not.
    monkeypatch.setattr("ingest_service.app.ClickHouse", _StopsShardBeforeInsert)
    monkeypatch.setattr(_StopsShardBeforeInsert, "before_insert", {})
    monkeypatch.setattr(_StopsShardBeforeInsert, "inserts", 0)
    app = create_ingest_app(settings.model_copy(update={"WAREHOUSE_URL": cluster_url}))
    async with app.router.lifespan_context(app), admin_client(app) as client:
        yield app, client


# One writing lane (SQLite's), so a batch's tables are inserted one after another.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_shard_down_answers_503_and_the_resends_store_each_event_once(
    receiver: tuple[FastAPI, httpx.AsyncClient],
    shards: list[ClickHouse],
    cluster_url: str,
    source_name: str,
) -> None:
    """A shard down fails the look-up (nothing written), or the write under way: its
    insert fails (18.16 refuses it whole when it cannot reach the shard; one cut off midway
    would keep the other shard's part), and the tables inserted before it stay stored.
    Either way the webhook answers 503 and SendGrid resends; once the shard is back, the
    resends' look-up finds what was stored and inserts only the rest. Nothing lost, nothing
    doubled, even before any merge."""
    _, client = receiver
    source = await new_source(client, source_name)
    schema = source["schema"]
    first = await client.post(source["path"], content=body_of(events(0, 200)))
    assert first.json()["stored"] == 200
    down = ShardServer.all()[1]  # the shard the URL does not name
    try:
        down.stop()
        refused = await client.post(source["path"], content=body_of(events(200, 200)))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        down.start()
        # Down after the look-up and the batch's first table (of four) were written.
        _StopsShardBeforeInsert.before_insert[_StopsShardBeforeInsert.inserts + 1] = down.stop
        partial = await client.post(source["path"], content=body_of(events(400, 200)))
        assert partial.status_code == 503
        assert not _StopsShardBeforeInsert.before_insert, "the second insert was reached"
    finally:
        if not down.answers():
            down.start()
    on_each = await per_shard(shards, _local_count(schema, 400))
    assert sum(on_each) == 50, on_each  # the first table's rows, on both shards
    assert all(on_each), on_each
    again = await client.post(source["path"], content=body_of(events(200, 200)))
    assert again.json() == {"stored": 200, "duplicates": 0, "rejected": 0}
    again = await client.post(source["path"], content=body_of(events(400, 200)))
    assert again.json() == {"stored": 150, "duplicates": 50, "rejected": 0}
    entry = ClickHouse(cluster_url)
    try:
        for final in ("", " FINAL"):
            for table in TABLES:
                sql = f"SELECT count(), uniqExact(id) FROM `{schema}`.`{table}`{final}"
                assert (await entry.execute(sql))[0] == (150, 150), (table, final)
        assert await one(entry, f"SELECT count() FROM `{schema}`.activity") == 600
    finally:
        await entry.close()


def _local_count(schema: str, start: int) -> str:
    """Rows of the batch from `start` (ids evt-start ..) in a shard's local tables."""
    branches = [
        f"SELECT count() AS n FROM `{schema}`.`{local_name(table)}` "
        f"WHERE toUInt32(substring(id, 5)) >= {start}"
        for table in TABLES
    ]
    return "SELECT sum(n) FROM (" + " UNION ALL ".join(branches) + ")"


async def test_a_cluster_the_server_does_not_know_is_named_in_readyz(
    settings: Settings, cluster_url: str, source_name: str
) -> None:
    unknown = cluster_url.replace("?cluster=", "?cluster=not_")
    app = create_ingest_app(settings.model_copy(update={"WAREHOUSE_URL": unknown}))
    async with app.router.lifespan_context(app), admin_client(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "has no cluster 'not_sendgrid_shards' in system.clusters" in ready.json()["detail"]
        assert "<remote_servers>" in ready.json()["detail"]
        source = await new_source(client, source_name)
        refused = await client.post(source["path"], content=body_of(events(0, 4)))
        assert refused.status_code == 503
