"""The sync's object tables in ClickHouse hold what they hold on SQL.

One fake account, two sources reading it: each sync runs twice, once through a sync service
keeping the objects on the control database (PostgreSQL) and once through one keeping them
in ClickHouse
(every statement of the ClickHouse writer also run on a current engine and its answers
compared: tests/clickhouse/conftest.py). After the first sync, after a re-sync where the
account changed and deleted objects of every kind, and after one more where nothing changed,
the ClickHouse tables read with FINAL equal the SQL tables row for row, the ledger says the
same of both, unchanged objects keep their version (no new row: merges are stopped, so every
row written stays countable), and the deleted ones carry `deleted_at`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.clickhouse import ClickHouse
from shared.clickhouse_layout import local_name
from shared.clickhouse_tables import column_type
from shared.db import create_engine
from shared.json_codec import canonical_json, load_json
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings
from shared.source_names import schema_for
from shared.source_rows import Source
from shared.tables import source_tables
from sync_service.clickhouse_objects import ClickHouseObjects, VersionClock
from sync_service.client import RetryPolicy
from sync_service.contacts_export import ExportPolicy
from sync_service.ledger import CollectionResult
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.clickhouse.conftest import _CurrentEngine, on_both
from tests.conftest import api_key
from tests.fake_sendgrid.contacts import GeneratedContacts
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.fake_sendgrid.state import generated_account
from tests.sync.fakes import FakeTime

# The control database is PostgreSQL: the SQL warehouse compared is the production one.
ON_POSTGRES = pytest.mark.parametrize("backend", ["postgres"])

CONTACTS = 3000
# What every kind of collection holds (generated_account's shapes; see its docstring).
SHAPE: dict[str, Any] = {
    "contacts": CONTACTS,
    "lists": 40,
    "segments": 5,
    "single_sends": 8,
    "export_files": 2,
    "suppressions": 400,
    "groups": 6,
    "templates": 12,
    "senders": 3,
    "automations": 4,
    "stats_days": 10,
}
# Bookkeeping that differs between two syncs of the same objects by design.
_WRITE_TIMES = ("synced_at", "deleted_at")


def fill(account: FakeAccount) -> None:
    """`account` holding what generated_account(**SHAPE) holds."""
    generated = generated_account(**SHAPE)
    for name in (
        "lists", "segments", "contacts", "custom_fields", "single_sends", "send_lists",
        "daily_stats", "suppressions", "suppression_groups", "group_members", "templates",
        "marketing_senders", "verified_senders", "singlesend_stats", "automation_stats",
        "scopes", "export_files", "polls_before_ready",
    ):  # fmt: skip
        setattr(account, name, getattr(generated, name))


def change(account: FakeAccount) -> None:
    """Change some objects and delete some, in every kind of collection that is listed
    completely."""
    contacts = account.contacts
    assert isinstance(contacts, GeneratedContacts)
    contacts.edit(0.05)  # every 20th contact renamed
    contacts.count -= 25  # the last 25 gone
    account.lists[0]["name"] = "list 0, renamed"
    del account.lists[-3:]
    del account.segments[-1]
    account.single_sends[0]["name"] = "single send 0, renamed"
    account.single_sends[0]["updated_at"] = "2026-11-30T10:00:00Z"
    bounces = account.suppressions["bounces"]
    account.remove_suppression("bounces", bounces[-1]["email"])
    account.remove_group(int(account.suppression_groups[-1]["id"]))
    removed = account.templates.pop()
    assert removed["versions"], "a template with versions, which go with it"
    account.templates[0]["name"] = "template 0, renamed"
    account.marketing_senders[0]["nickname"] = "Sender 0, renamed"


def _comparable(value: Any, column: sa.Column[Any], json_text: bool) -> Any:
    if value is None:
        return None
    if isinstance(column.type, sa.JSON):  # ClickHouse holds JSON text, SQL gives it decoded
        return canonical_json(load_json(value.encode()) if json_text else value)
    if isinstance(value, datetime):  # ClickHouse's DateTime holds whole seconds
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(values: Any, table: sa.Table, json_text: bool = False) -> tuple[Any, ...]:
    row = dict(zip([column.name for column in table.columns], values, strict=False))
    return tuple(
        row["deleted_at"] is not None
        if column.name == "deleted_at"
        else _comparable(row[column.name], column, json_text)
        for column in table.columns
        if column.name != "synced_at"
    )


class Warehouses:
    """The same source synced into both warehouses, and their tables read back."""

    def __init__(
        self,
        sql: tuple[SyncDependencies, Source],
        ch: tuple[SyncDependencies, Source],
        reader: ClickHouse,
    ) -> None:
        (self.sql, self.sql_source), (self.ch, self.source) = sql, ch
        self.reader = reader
        self.tables = source_tables(self.sql_source.schema_name).objects

    async def sync(self) -> tuple[list[CollectionResult], list[CollectionResult]]:
        results = []
        for deps, source in ((self.sql, self.sql_source), (self.ch, self.source)):
            outcome = await SyncService(deps).run(source.id, "manual")
            assert outcome is not None
            assert outcome.status == "succeeded", outcome
            results.append(outcome.collections)
        return results[0], results[1]

    async def sql_rows(self, name: str) -> set[tuple[Any, ...]]:
        table = self.tables[name]  # the SQL source's schema
        async with self.sql.engine.connect() as connection:
            rows = await connection.execute(sa.select(table))
            return {_row(row, table) for row in rows}

    def target(self, name: str) -> str:
        return f"`{self.source.schema_name}`.`{name}`"

    async def ch_rows(self, name: str) -> set[tuple[Any, ...]]:
        table = self.tables[name]
        columns = ", ".join(f"`{column.name}`" for column in table.columns)
        rows = await self.reader.execute(f"SELECT {columns} FROM {self.target(name)} FINAL")
        return {_row(row, table, json_text=True) for row in rows}

    async def versions(self, name: str) -> dict[tuple[str, ...], int]:
        """Each object's latest version."""
        keys = ", ".join(f"`{c.name}`" for c in self.tables[name].primary_key.columns)
        rows = await self.reader.execute(f"SELECT {keys}, version FROM {self.target(name)} FINAL")
        return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}

    async def raw_rows(self, name: str) -> int:
        """Every row stored, every version of each object (merges are stopped)."""
        ((count,),) = await self.reader.execute(f"SELECT count() FROM {self.target(name)}")
        return int(count)

    async def compare(self) -> None:
        for name in self.tables:
            sql, ch = await self.sql_rows(name), await self.ch_rows(name)
            assert ch == sql, (name, sorted(ch - sql, key=repr)[:3], sorted(sql - ch, key=repr)[:3])

    async def stop_merges(self) -> None:
        for name in self.tables:
            await self.reader.execute(f"SYSTEM STOP MERGES {self.target(name)}")


def written(result: CollectionResult) -> int:
    """New and changed objects, as the ledger's message counts them."""
    found = re.search(r"([\d,]+) new, ([\d,]+) changed", result.message or "")
    assert found, result.message
    return sum(int(n.replace(",", "")) for n in found.groups())


def _ledger(results: list[CollectionResult]) -> list[tuple[Any, ...]]:
    return [(r.collection, r.status, r.rows_upserted, r.rows_deleted, r.message) for r in results]


@pytest.fixture
async def warehouses(
    settings: Settings,
    account: FakeAccount,
    clickhouse_url: str,
    both_engines: _CurrentEngine,
    clickhouse: ClickHouse,
    source_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Warehouses]:
    monkeypatch.setattr("sync_service.object_store.ClickHouse", on_both(both_engines))
    fill(account)
    fake_time = FakeTime()
    # Every suppression list read completely every run, so removals are found at once.
    settings = settings.model_copy(update={"SUPPRESSION_FULL_SCAN_INTERVAL": timedelta(0)})
    in_clickhouse = settings.model_copy(update={"WAREHOUSE_URL": clickhouse_url})
    async with httpx.AsyncClient() as http:
        both = [
            SyncDependencies(
                create_engine(settings.DATABASE_URL),
                http,
                chosen,
                retry=RetryPolicy(max_attempts=3),
                export=ExportPolicy(poll_initial=1.0, poll_max=5.0, max_wait=60.0),
                sleep=fake_time.sleep,
                clock=fake_time.clock,
            )
            for chosen in (settings, in_clickhouse)
        ]
        sql, ch = both
        # A source for each warehouse (the cursors are a source's), reading one account.
        registry = SourceRegistry(sql.engine, settings, http)
        sources = [
            (await registry.create(SourceCreate(name=name, api_key=api_key())))[0]
            for name in (f"{source_name} sql", source_name)
        ]
        try:
            yield Warehouses((sql, sources[0]), (ch, sources[1]), clickhouse)
        finally:
            for deps in both:
                await deps.objects.close()
                await deps.counts.close()
                if deps.clickhouse is not None:
                    await deps.clickhouse.clickhouse.close()
                await deps.engine.dispose()


@ON_POSTGRES
async def test_a_sync_stores_in_clickhouse_what_it_stores_on_sql(
    warehouses: Warehouses, account: FakeAccount
) -> None:
    sql, ch = await warehouses.sync()

    assert _ledger(ch) == _ledger(sql)
    assert {r.collection for r in ch if r.rows_upserted} == set(warehouses.tables)
    await warehouses.compare()
    assert await warehouses.raw_rows("recipients") == CONTACTS

    await warehouses.stop_merges()
    before = {name: await warehouses.versions(name) for name in warehouses.tables}
    rows_before = {name: await warehouses.raw_rows(name) for name in warehouses.tables}
    details = len(account.details_fetched)
    change(account)
    sql, ch = await warehouses.sync()

    assert _ledger(ch) == _ledger(sql)
    # The campaigns' stored details were read back from each warehouse alike: only the
    # changed single send's detail was fetched again, once per warehouse.
    assert len(account.details_fetched) - details == 2
    await warehouses.compare()
    recipients = {r.collection: r for r in ch}["recipients"]
    assert recipients.rows_deleted == 25
    edited = len(range(0, CONTACTS - 25, 20))  # every 20th contact of those left
    assert f"0 new, {edited} changed" in (recipients.message or ""), recipients.message
    by_name = {r.collection: r for r in ch}
    for name in warehouses.tables:
        after = await warehouses.versions(name)
        rewritten = {key for key, version in after.items() if version != before[name].get(key)}
        # Unchanged objects keep their row and version: one row more per object written.
        assert await warehouses.raw_rows(name) == rows_before[name] + len(rewritten), name
        assert len(rewritten) == written(by_name[name]) + by_name[name].rows_deleted, name
    deleted_contacts = await warehouses.reader.execute(
        f"SELECT count() FROM {warehouses.target('recipients')} FINAL WHERE deleted_at IS NOT NULL"
    )
    assert deleted_contacts == [(25,)]

    # Nothing changed since: nothing is written, and both still agree.
    rows_before = {name: await warehouses.raw_rows(name) for name in warehouses.tables}
    sql, ch = await warehouses.sync()

    assert _ledger(ch) == _ledger(sql)
    await warehouses.compare()
    for name in warehouses.tables:
        assert await warehouses.raw_rows(name) == rows_before[name], name


async def test_every_object_table_has_its_columns_and_its_version(
    both_engines: _CurrentEngine, clickhouse_url: str, clickhouse: ClickHouse, source_name: str
) -> None:
    """Made by a sync's first write: the columns of `shared.object_tables` typed as the event
    tables are, `version` last, the latest version kept per primary key."""
    objects = ClickHouseObjects(on_both(both_engines)(clickhouse_url))
    schema = schema_for(source_name)
    try:
        await objects.ensure_source(schema)
    finally:
        await objects.close()
    for name, table in source_tables(schema).objects.items():
        described = await clickhouse.execute(f"DESCRIBE TABLE `{schema}`.`{name}`")
        assert [(column, kind) for column, kind, *_ in described] == [
            *((c.name, column_type(c)) for c in table.columns),
            ("version", "UInt64"),
        ], name
        keys = [c.name for c in table.primary_key.columns]
        cluster = clickhouse.target.cluster
        if cluster is not None:
            # The product's name is a Distributed table sharded by the key, so every version
            # of an object meets on one shard; the shard's own table is `<name>_local`.
            ((engine,),) = await clickhouse.execute(
                "SELECT engine_full FROM system.tables WHERE database = %(db)s AND name = %(n)s",
                {"db": schema, "n": name},
            )
            assert engine == (
                f"Distributed('{cluster}', '{schema}', '{local_name(name)}', "
                f"sipHash64({', '.join(keys)}))"
            ), engine
        ((engine, key),) = await clickhouse.execute(
            "SELECT engine_full, sorting_key FROM system.tables "
            "WHERE database = %(db)s AND name = %(name)s",
            {"db": schema, "name": name if cluster is None else local_name(name)},
        )
        assert engine.startswith("ReplacingMergeTree(version)"), engine
        assert key == ", ".join(keys)
    stats = dict(
        (column, kind)
        for column, kind, *_ in await clickhouse.execute(f"DESCRIBE TABLE `{schema}`.stats_daily")
    )
    assert stats["date"] == "Date"


def test_versions_grow_even_when_the_clock_goes_back() -> None:
    """A write's version is above the last one given and above every stored one, so an
    older sync never wins, whatever the clock does."""
    now = [5_000_000_000]  # nanoseconds
    clock = VersionClock(lambda: now[0])
    first = clock.next()
    assert first == 5_000_000
    now[0] = 1_000_000_000  # set back four seconds
    assert clock.next() == first + 1
    clock.at_least(9_000_000)  # a table holds a version written by a clock ahead of this one
    assert clock.next() == 9_000_000
    now[0] = 10_000_000_000
    assert clock.next() == 10_000_000
