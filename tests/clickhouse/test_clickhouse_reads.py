"""Reading events back from ClickHouse: the webhook's 24-hour counts, the console's events per
hour and the reconciliation's day counts answer what they answer on SQL for the same events.

The same batches go through the real receiver of two ingest apps sharing one control
database: one keeps the events in SQL, the other in ClickHouse (each statement also run on a
current engine, whose answers must be the same: tests/clickhouse/conftest.py). The ClickHouse
tables also hold unmerged copies of every row (as two receivers racing on one resend leave
them; merges are stopped, OPTIMIZE never runs), which every count must see once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from ingest_service.app import create_app as create_ingest_app
from shared.clickhouse import ClickHouse
from shared.clickhouse_counts import ClickHouseEventCounts
from shared.clickhouse_event_rows import ClickHouseEventRows
from shared.clock import utcnow
from shared.event_hourly import hourly_events
from shared.event_store import store_events
from shared.registry import SourceRegistry
from shared.settings import Settings
from shared.stats_days import day_range
from shared.tables import source_tables
from sync_service.runner import SyncDependencies
from tests.clickhouse.conftest import _CurrentEngine, on_both, stop_merges
from tests.conftest import admin_client
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.reconciliation_helpers import (
    DAY_COUNTS,
    Clock,
    collecting_since,
    day_traffic,
    reconciliation,
    unique,
)
from tests.webhook_helpers import body_of, new_source, sample_events

# Two receivers (and their apps) at once share a PostgreSQL control database.
pytestmark = [pytest.mark.usefixtures("sendgrid"), pytest.mark.parametrize("backend", ["postgres"])]

DAY_START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 3


class _Received(datetime):
    """The receiver's clock (`ingest_service.webhook`): when a batch is taken to arrive."""

    moment: ClassVar[datetime]

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return cls.moment


class Apps:
    def __init__(self, sql: FastAPI, ch: FastAPI, both: _CurrentEngine, url: str) -> None:
        self.sql, self.ch, self.both, self.url = sql, ch, both, url

    def registry(self, app: FastAPI) -> SourceRegistry:
        registry: SourceRegistry = app.state.registry
        return registry


@pytest.fixture
async def apps(
    settings: Settings, clickhouse_url: str, both_engines: _CurrentEngine
) -> AsyncIterator[tuple[Apps, httpx.AsyncClient, httpx.AsyncClient]]:
    sql = create_ingest_app(settings)
    ch = create_ingest_app(settings.model_copy(update={"WAREHOUSE_URL": clickhouse_url}))
    async with (
        sql.router.lifespan_context(sql),
        ch.router.lifespan_context(ch),
        admin_client(sql) as sql_client,
        admin_client(ch) as ch_client,
    ):
        yield Apps(sql, ch, both_engines, clickhouse_url), sql_client, ch_client


async def received(
    client: httpx.AsyncClient, path: str, events: list[dict[str, Any]], at: datetime
) -> dict[str, int]:
    _Received.moment = at
    answer = await client.post(path, content=body_of(events))
    assert answer.status_code == 200, answer.text
    counts: dict[str, int] = answer.json()
    return counts


async def backfilled(apps: Apps, schema: str, events: list[dict[str, Any]], at: datetime) -> None:
    """`events` stored by a backfill into both warehouses."""
    connection = on_both(apps.both)(apps.url)
    try:
        for app, clickhouse in ((apps.sql, None), (apps.ch, ClickHouseEventRows(connection))):
            counts = await store_events(
                app.state.engine,
                schema,
                events,
                origin="backfill",
                received_at=at,
                clickhouse=clickhouse,
            )
            assert counts.stored == len(events)
    finally:
        await connection.close()


async def copy_every_row(apps: Apps, schema: str) -> None:
    """A second copy of each stored row, unmerged (merges stopped first)."""
    connection = on_both(apps.both)(apps.url)
    try:
        for table in source_tables(schema).events:
            name = f"`{schema}`.`{table}`"
            await stop_merges(connection, schema, table)
            await connection.execute(f"INSERT INTO {name} SELECT * FROM {name}")
    finally:
        await connection.close()


async def test_every_read_answers_on_clickhouse_what_it_answers_on_sql(
    apps: tuple[Apps, httpx.AsyncClient, httpx.AsyncClient],
    clickhouse: ClickHouse,
    account: FakeAccount,
    source_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both, sql_client, ch_client = apps
    monkeypatch.setattr("ingest_service.webhook.datetime", _Received)
    source = await new_source(sql_client, source_name)
    schema, path = source["schema"], source["path"]
    await collecting_since(both.sql, source["id"], DAY_START - timedelta(days=1))
    now = utcnow()
    # Three days' traffic of every metric, received 1, 3 and 30 hours ago, and SendGrid's
    # samples of every event type, received 10 days ago (outside both windows).
    batches = [day_traffic(DAY_START + timedelta(days=n), DAY_COUNTS, f"d{n}") for n in range(DAYS)]
    batches.append(sample_events())
    ages = [timedelta(hours=h) for h in (1, 3, 30, 240)]
    for n, batch in enumerate(batches):
        at = now - ages[n % len(ages)]
        stored_sql = await received(sql_client, path, batch, at)
        stored_ch = await received(ch_client, path, batch, at)
        assert stored_ch == stored_sql
        assert stored_ch["stored"] > 0
        # SendGrid's resend, to the ClickHouse receiver: absorbed.
        again = await received(ch_client, path, batch, at)
        assert (again["stored"], again["duplicates"]) == (0, stored_ch["stored"])
    # A backfill of the day after: in the day counts, not in what the webhook received.
    backfill = day_traffic(DAY_START + timedelta(days=DAYS), DAY_COUNTS, "bf")
    await backfilled(both, schema, backfill, now - timedelta(hours=1))
    await copy_every_row(both, schema)

    # The copies are there, unmerged: a count without FINAL would see them.
    raw = (await clickhouse.execute(f"SELECT count() FROM `{schema}`.`delivered`"))[0][0]
    once = (await clickhouse.execute(f"SELECT count() FROM `{schema}`.`delivered` FINAL"))[0][0]
    assert raw == 2 * once > 0

    sql_counts, ch_counts = both.registry(both.sql).counts, both.registry(both.ch).counts
    assert isinstance(ch_counts, ClickHouseEventCounts)

    # 1. The 24-hour counts, as GET /sources/{id} answers them.
    sql_summary = (await sql_client.get(f"/sources/{source['id']}")).json()["webhook"]
    ch_summary = (await ch_client.get(f"/sources/{source['id']}")).json()["webhook"]
    assert ch_summary["events_last_24h"] == sql_summary["events_last_24h"]
    # The batches of 1 and 3 hours ago (days 0 and 1), no backfilled event.
    last_24h = ch_summary["events_last_24h"]
    assert last_24h["delivered"] == DAY_COUNTS["delivered"] * 2  # d0 (1 h), d1 (3 h)
    assert last_24h["processed"] == DAY_COUNTS["processed"] * 2

    # 2. The console's hours.
    for hours in (1, 24, 48, 24 * 7):
        on_sql = await hourly_events(sql_counts, await _source(both.sql, source), hours, now)
        on_ch = await hourly_events(ch_counts, await _source(both.ch, source), hours, now)
        assert on_ch == on_sql
    chart = (await ch_client.get(f"/sources/{source['id']}/events/hourly?hours=48")).json()
    totals = {series["table"]: series["total"] for series in chart["series"]}
    assert totals["delivered"] == DAY_COUNTS["delivered"] * 3  # 1, 3 and 30 hours ago
    assert totals["bounce"] == (DAY_COUNTS["bounces"] + DAY_COUNTS["blocks"]) * 3
    assert totals["_open"] == DAY_COUNTS["opens"] * 3

    # 3. The reconciliation's counts, days cut in two time zones.
    for zone in (ZoneInfo("UTC"), ZoneInfo("America/New_York")):
        for n in range(-1, DAYS + 2):
            day = day_range(date(2026, 3, 1) + timedelta(days=n), zone)
            assert await ch_counts.day_counts(schema, day) == await sql_counts.day_counts(
                schema, day
            ), (zone, day)
    utc_day = day_range(date(2026, 3, 1) + timedelta(days=DAYS), ZoneInfo("UTC"))
    expected = DAY_COUNTS | unique(DAY_COUNTS)  # the backfilled day, counted whole
    assert await ch_counts.day_counts(schema, utc_day) == expected
    earliest = await ch_counts.earliest_event(schema)
    assert earliest == await sql_counts.earliest_event(schema)
    assert earliest is not None
    assert earliest <= DAY_START

    # The reconciliation itself, on ClickHouse: every day complete.
    for n in range(DAYS + 1):
        account.daily_stats[(date(2026, 3, 1) + timedelta(days=n)).isoformat()] = expected
    registry = both.registry(both.ch)
    outcome = await reconciliation(both.ch, Clock(datetime(2026, 3, 8, tzinfo=UTC))).reconcile(
        await registry.rows.get(source["id"])
    )
    assert outcome.error is None
    checked = {day: outcome.days[day] for day in outcome.days if day >= date(2026, 3, 1)}
    assert checked[date(2026, 3, 1)] == ("complete", "complete")
    assert checked[date(2026, 3, 1) + timedelta(days=DAYS)] == ("complete", "complete")
    assert both.both.statements, "every count also ran on the current engine"


async def _source(app: FastAPI, source: dict[str, Any]) -> Any:
    registry: SourceRegistry = app.state.registry
    return await registry.rows.get(source["id"])


async def test_a_source_without_events_yet_counts_zero(
    apps: tuple[Apps, httpx.AsyncClient, httpx.AsyncClient], source_name: str
) -> None:
    """A source's ClickHouse database is made by its first write: until then every read
    answers zeros, as on SQL, rather than failing."""
    both, _, ch_client = apps
    source = await new_source(ch_client, source_name)
    summary = (await ch_client.get(f"/sources/{source['id']}")).json()["webhook"]
    assert set(summary["events_last_24h"]) == set(source_tables(source["schema"]).events)
    assert set(summary["events_last_24h"].values()) == {0}
    chart = await ch_client.get(f"/sources/{source['id']}/events/hourly?hours=24")
    assert chart.status_code == 200
    assert {series["total"] for series in chart.json()["series"]} == {0}
    counts = both.registry(both.ch).counts
    assert await counts.earliest_event(source["schema"]) is None
    day = day_range(date(2026, 3, 1), ZoneInfo("UTC"))
    assert set((await counts.day_counts(source["schema"], day)).values()) == {0}


async def test_a_missing_table_leaves_the_others_counted(
    apps: tuple[Apps, httpx.AsyncClient, httpx.AsyncClient],
    source_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both, _, ch_client = apps
    monkeypatch.setattr("ingest_service.webhook.datetime", _Received)
    source = await new_source(ch_client, source_name)
    schema = source["schema"]
    traffic = day_traffic(DAY_START, DAY_COUNTS)
    await received(ch_client, source["path"], traffic, utcnow() - timedelta(hours=2))
    connection = on_both(both.both)(both.url)
    try:
        await connection.execute(f"DROP TABLE `{schema}`.`bounce`")
    finally:
        await connection.close()
    counts = both.registry(both.ch).counts
    last = await counts.received_since(schema, utcnow() - timedelta(hours=24))
    assert (last["bounce"], last["delivered"]) == (0, DAY_COUNTS["delivered"])
    day = await counts.day_counts(schema, day_range(DAY_START.date(), ZoneInfo("UTC")))
    assert (day["bounces"], day["blocks"]) == (0, 0)
    assert day["processed"] == DAY_COUNTS["processed"]


async def test_copies_received_at_different_moments_count_once(
    apps: tuple[Apps, httpx.AsyncClient, httpx.AsyncClient],
    source_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two receivers racing on one resend may store an event twice, each copy with its own
    `received_at`; before they merge, the hours and the 24-hour counts still see it once."""
    both, _, ch_client = apps
    monkeypatch.setattr("ingest_service.webhook.datetime", _Received)
    source = await new_source(ch_client, source_name)
    schema = source["schema"]
    now = utcnow().replace(minute=30, second=0, microsecond=0)
    events = day_traffic(DAY_START, {"delivered": 6})[:6]
    await received(ch_client, source["path"], events, now - timedelta(hours=2))
    connection = on_both(both.both)(both.url)
    try:
        name = f"`{schema}`.`delivered`"
        await stop_merges(connection, schema, "delivered")
        # The racing receiver's copies, received an hour later.
        await connection.execute(f"INSERT INTO {name} SELECT {_later(schema)} FROM {name}")
    finally:
        await connection.close()
    counts = both.registry(both.ch).counts
    hourly = await hourly_events(counts, await _source(both.ch, source), 24, now)
    delivered = next(series for series in hourly.series if series.table == "delivered")
    assert delivered.total == 6
    last = await counts.received_since(schema, now - timedelta(hours=24))
    assert last["delivered"] == 6


def _later(schema: str) -> str:
    """Every column of `delivered`, `received_at` an hour later."""
    columns = source_tables(schema).events["delivered"].columns
    return ", ".join(
        "`received_at` + 3600" if c.name == "received_at" else f"`{c.name}`" for c in columns
    )


async def test_the_sync_service_reconciles_from_clickhouse(
    apps: tuple[Apps, httpx.AsyncClient, httpx.AsyncClient],
    settings: Settings,
    clickhouse_url: str,
    source_name: str,
) -> None:
    """The sync service's reconciliation (after every run and daily) counts where the
    events are."""
    both, _, ch_client = apps
    source = await new_source(ch_client, source_name)
    await received(ch_client, source["path"], day_traffic(DAY_START, DAY_COUNTS), utcnow())
    warehouse = settings.model_copy(update={"WAREHOUSE_URL": clickhouse_url})
    async with httpx.AsyncClient() as http:
        deps = SyncDependencies(both.sql.state.engine, http, warehouse)
        try:
            assert deps.reconciliation.counts is deps.counts
            day = day_range(DAY_START.date(), ZoneInfo("UTC"))
            assert await deps.counts.day_counts(source["schema"], day) == DAY_COUNTS | unique(
                DAY_COUNTS
            )
        finally:
            await deps.counts.close()
            if deps.clickhouse is not None:
                await deps.clickhouse.clickhouse.close()
