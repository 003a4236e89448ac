"""Completeness benchmark: the daily reconciliation of 30 days over N stored events (10M in
the full run) on PostgreSQL, against a plain `count(*)` of the same event tables in the same
run, and against the same reconciliation without the `timestamp` indexes.

The events are made by the database itself (`INSERT ... SELECT generate_series`), in the
proportions of bench/events.py and as wide as the receiver stores them (`raw`, `custom_args`,
`category`), spread evenly over 30 days in time order, as a webhook appends them; the tables
are then vacuumed and analysed, as autovacuum leaves a table that has stopped growing.
SendGrid's `/v3/stats` is the fake's (tests/fake_sendgrid), answering in process, its daily
figures counted independently from the tables (one grouped scan) with 5 deliveries more on
one day: the benchmark checks the reconciliation finds exactly those, and every other day
complete.

What the index costs the write path is measured too: the raw COPY of the same realistic
events (bench/events.py, as the parser makes their records) into the event tables with and
without the `timestamp` indexes, alternately, in the same run.

    python -m bench.completeness --database-url postgresql+asyncpg://… --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.console import indexes_built_after
from bench.events import make_batches
from bench.ingest import ADMIN_TOKEN, SECRET_KEY, _copy_limit, _unique_records
from shared import warehouse
from shared.completeness_metrics import METRICS
from shared.db import create_engine
from shared.migrate import upgrade_control_schema
from shared.reconciliation import Reconciliation
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings, load_settings
from shared.source_rows import SourceRows
from shared.sql_event_counts import SqlEventCounts, day_counts_query
from shared.stats_days import day_range
from shared.tables import source_tables, sources
from tests.fake_sendgrid.app import create_fake_sendgrid
from tests.fake_sendgrid.state import FakeAccountState

DAYS = 30
SENDGRID = "http://sendgrid.bench"
# The moment the benchmark reconciles at: its 30 settled days (48 h settle) are those before
# the last two, and every event is in them.
NOW = datetime(2026, 4, 3, 12, tzinfo=UTC)
FIRST_DAY = date(2026, 3, 2)
# Share of each event table in a sending account's stream (bench/events.py's MIX).
SHARES: dict[str, float] = {
    "processed": 0.26, "delivered": 0.25, "_open": 0.22, "click": 0.10, "deferred": 0.05,
    "bounce": 0.03, "dropped": 0.03, "unsubscribe": 0.02, "group_unsubscribe": 0.015,
    "group_resubscribe": 0.005, "spam_report": 0.01, "account_status_change": 0.001,
}  # fmt: skip
EVENTS = {
    "processed": "processed", "delivered": "delivered", "_open": "open", "click": "click",
    "deferred": "deferred", "bounce": "bounce", "dropped": "dropped",
    "unsubscribe": "unsubscribe", "group_unsubscribe": "group_unsubscribe",
    "group_resubscribe": "group_resubscribe", "spam_report": "spamreport",
    "account_status_change": "account_status_change",
}  # fmt: skip
# Per table: its own columns, as SQL over the row number `g` (none for the others;
# `account_status_change` rows get the common columns, enough to count, which nothing does).
OWN_COLUMNS: dict[str, dict[str, str]] = {
    "bounce": {"type": "CASE WHEN g % 3 = 0 THEN 'blocked' ELSE 'bounce' END",
               "reason": "'550 unknown user'", "status": "'5.0.0'"},
    "dropped": {"reason": "(ARRAY['Bounced Address', 'Spam Reporting Address', "
                          "'Unsubscribed Address', 'Invalid', 'Spam Content'])[1 + g % 5]"},
    "delivered": {"response": "'250 OK'", "ip": "'167.89.0.1'", "tls": "true"},
    "deferred": {"response": "'400 try again later'", "attempt": "1 + g % 8"},
    "_open": {"useragent": "'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)'",
              "ip": "'203.0.113.7'", "sg_machine_open": "g % 5 < 2"},
    "click": {"useragent": "'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)'",
              "ip": "'203.0.113.7'", "url": "'https://example.com/p/' || (g % 500)"},
}  # fmt: skip
# The day SendGrid counts 5 more deliveries than are stored.
SHORT_DAY = FIRST_DAY + timedelta(days=11)
SHORT_BY = 5
# Batches of 1,000 realistic events for the COPY with and without the indexes.
COPY_BATCHES = 200


@dataclass
class CompletenessFigures:
    events: int
    load_seconds: float
    count_seconds: float  # count(*) of every table the reconciliation reads
    reconcile_seconds: float  # 30 days, every metric, written to `completeness`
    unique_seconds: float  # of it, the two distinct-recipient counts (unique_* trends)
    unindexed_seconds: float  # the same without the `timestamp` indexes
    verdicts_right: bool
    copy_rows: int  # events in each COPY below
    copy_indexed: float  # rows/s into the event tables as they are
    copy_unindexed: float  # rows/s into the same tables without the `timestamp` indexes


def _fill_sql(schema: str, table: str, rows: int) -> str:
    """`rows` events of `table`, evenly over DAYS days from FIRST_DAY, in time order; `raw`
    is each event as SendGrid sends it (about 400 bytes), its varying fields filled in."""
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC).timestamp()
    event = EVENTS[table]
    own = OWN_COLUMNS.get(table, {})
    columns = ["id", "event", "email", "timestamp", "sg_event_id", "sg_message_id",
               "category", "custom_args", "raw", "received_at", *own]  # fmt: skip
    template = {
        "event": event,
        "category": ["newsletter", "weekly"],
        "userid": "4711",
        "campaign": "spring",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "marketing_campaign_name": "spring sale",
        "marketing_campaign_id": 12345,
    }
    raw = (
        f"'{json.dumps(template)}'::jsonb || jsonb_build_object('email', x.email, "
        "'sg_event_id', x.id, 'sg_message_id', x.msg, 'timestamp', x.epoch"
        + "".join(f", '{name}', {expression}" for name, expression in own.items())
        + ")"
    )
    values = ["x.id", f"'{event}'", "x.email", "x.at", "x.id", "x.msg",
              "'[\"newsletter\", \"weekly\"]'::jsonb",
              "jsonb_build_object('userid', (g % 100000)::text, 'campaign', 'spring')",
              raw, "x.at", *own.values()]  # fmt: skip
    return (
        f"INSERT INTO {schema}.{table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(0, {rows - 1}) AS g, LATERAL ("
        f"SELECT '{event}-' || g || '-' || md5(g::text) AS id, "
        "'user' || (g::bigint * 7919 % 1000000) || '@example.com' AS email, "
        "substr(md5(g::text), 1, 22) || '.recvd-' || (g % 97) AS msg, "
        f"to_timestamp({start} + (g::float8 * {DAYS * 86400}) / {rows}) AS at, "
        f"({start} + (g::bigint * {DAYS * 86400}) / {rows})::bigint AS epoch) AS x"
    )


async def _load(engine: AsyncEngine, schema: str, events: int) -> None:
    """The events, then each table's primary key and indexes built over them (faster than
    keeping them up to date row by row, and the same tables in the end), then autovacuum's
    end state: the visibility map set, statistics fresh."""
    tables = source_tables(schema).events
    async with indexes_built_after(engine, schema):
        for name, share in SHARES.items():
            rows = max(1, round(events * share))
            async with engine.begin() as connection:
                await connection.exec_driver_sql(_fill_sql(schema, name, rows))
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for name in tables:
            await autocommit.exec_driver_sql(f"VACUUM ANALYZE {schema}.{name}")


async def _sendgrid_counts(engine: AsyncEngine, schema: str) -> dict[str, dict[str, int]]:
    """Each day's metrics as SendGrid would count them, from one grouped scan per metric."""
    counted: dict[str, dict[str, int]] = {}
    async with engine.connect() as connection:
        for metric in METRICS:
            counted_value = f"count(DISTINCT {metric.distinct})" if metric.distinct else "count(*)"
            where = f"WHERE {metric.column} = '{metric.value}'" if metric.column else ""
            rows = await connection.execute(
                sa.text(
                    f"SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, {counted_value} "
                    f"FROM {schema}.{metric.table} {where} GROUP BY 1"
                )
            )
            for day, count in rows:
                counted.setdefault(day.isoformat(), {})[metric.metric] = int(count)
    counted[SHORT_DAY.isoformat()]["delivered"] += SHORT_BY
    return counted


async def _count_all(engine: AsyncEngine, schema: str) -> float:
    """The baseline: a plain count(*) of every table the reconciliation reads."""
    tables = sorted({metric.table for metric in METRICS})
    started = time.perf_counter()
    async with engine.connect() as connection:
        for table in tables:
            await connection.exec_driver_sql(f"SELECT count(*) FROM {schema}.{table}")
    return time.perf_counter() - started


async def _reconcile(
    reconciliation: Reconciliation, engine: AsyncEngine, source_id: str
) -> tuple[float, bool]:
    source = await SourceRows(engine).get(source_id)
    started = time.perf_counter()
    outcome = await reconciliation.reconcile(source)
    seconds = time.perf_counter() - started
    expected = {FIRST_DAY + timedelta(days=n): ("complete", "complete") for n in range(DAYS)}
    expected[SHORT_DAY] = ("missing", f"{SHORT_BY} events missing in delivered")
    return seconds, outcome.error is None and outcome.days == expected


async def _unique_counts(engine: AsyncEngine, schema: str) -> float:
    """The part of a reconciliation spent on the distinct recipients of opens and clicks (the
    trends beside unique_opens and unique_clicks): the same statements, alone."""
    unique = tuple(metric for metric in METRICS if metric.distinct)
    query = day_counts_query(source_tables(schema), unique)
    zone = ZoneInfo("UTC")
    started = time.perf_counter()
    async with engine.connect() as connection:
        for n in range(DAYS):
            day = day_range(FIRST_DAY + timedelta(days=n), zone)
            await connection.execute(query, {"start": day.start, "end": day.end})
    return time.perf_counter() - started


async def _timestamp_indexes(engine: AsyncEngine, schema: str, *, present: bool) -> None:
    async with engine.begin() as connection:
        for name, table in source_tables(schema).events.items():
            if present:
                for index in table.indexes:
                    await connection.run_sync(index.create, checkfirst=True)
            else:
                await connection.exec_driver_sql(f"DROP INDEX {schema}.ix_{name}_timestamp")


async def _copy_rates(settings: Settings, batches: int) -> tuple[int, float, float]:
    """Median rows/s of the raw COPY of the same records with and without the indexes."""
    records = _unique_records(make_batches(batches, 1000, seed=11)[0])
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with engine.begin() as connection:
            await warehouse.create_source_schema(connection, "bench_copy_indexed")
            await warehouse.create_source_schema(connection, "bench_copy_unindexed")
            for name in EVENTS:
                await connection.exec_driver_sql(
                    f"DROP INDEX bench_copy_unindexed.ix_{name}_timestamp"
                )
    finally:
        await engine.dispose()
    indexed: list[float] = []
    unindexed: list[float] = []
    for _ in range(2):  # alternately, so both see the same machine
        indexed += await _copy_limit(settings, "bench_copy_indexed", records)
        unindexed += await _copy_limit(settings, "bench_copy_unindexed", records)
    rows = sum(len(table_records) for table_records in records.values())
    return rows, statistics.median(indexed), statistics.median(unindexed)


async def run(database_url: str, workdir: Path, *, events: int) -> CompletenessFigures:
    await asyncio.to_thread(upgrade_control_schema, database_url)
    settings: Settings = load_settings(
        DATABASE_URL=database_url,
        DATA_DIR=workdir / "data",
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=SECRET_KEY,
        SENDGRID_API_URL=SENDGRID,
        RECONCILE_DAYS=DAYS + 2,
    )
    account = FakeAccountState()
    account.scopes.append("stats.read")
    engine = create_engine(database_url)
    transport = httpx.ASGITransport(app=create_fake_sendgrid(account))
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            registry = SourceRegistry(engine, settings, http)
            name = f"bench completeness {uuid.uuid4().hex[:8]}"
            source, _ = await registry.create(SourceCreate(name=name, api_key="SG.bench.key"))
            schema = source.schema_name
            async with engine.begin() as connection:
                await connection.execute(
                    sources.update()
                    .where(sources.c.id == source.id)
                    .values(created_at=datetime(2026, 2, 1, tzinfo=UTC))
                )
            started = time.perf_counter()
            await _load(engine, schema, events)
            load_seconds = time.perf_counter() - started
            account.daily_stats = await _sendgrid_counts(engine, schema)
            reconciliation = Reconciliation(
                engine, settings, http, registry.secrets, SqlEventCounts(engine), now=lambda: NOW
            )
            # Warm the cache the same way for both: one pass of each first.
            await _count_all(engine, schema)
            await _reconcile(reconciliation, engine, source.id)
            count_seconds = await _count_all(engine, schema)
            reconcile_seconds, right = await _reconcile(reconciliation, engine, source.id)
            unique_seconds = await _unique_counts(engine, schema)
            await _timestamp_indexes(engine, schema, present=False)
            unindexed_seconds, right_unindexed = await _reconcile(reconciliation, engine, source.id)
            await _timestamp_indexes(engine, schema, present=True)
    finally:
        await engine.dispose()
    copy_rows, copy_indexed, copy_unindexed = await _copy_rates(settings, COPY_BATCHES)
    return CompletenessFigures(
        events,
        load_seconds,
        count_seconds,
        reconcile_seconds,
        unique_seconds,
        unindexed_seconds,
        right and right_unindexed,
        copy_rows,
        copy_indexed,
        copy_unindexed,
    )


def summary(figures: CompletenessFigures) -> list[tuple[str, str, str]]:
    f = figures
    n = f"{f.events / 1e6:g}M" if f.events >= 1_000_000 else f"{f.events:,}"
    return [
        ("events stored (30 days, every table)", n, f"loaded in {f.load_seconds:.0f} s"),
        ("count(*) of the 9 tables read (baseline)", f"{f.count_seconds:.2f} s", "1.00x"),
        (
            "reconciliation of 30 days (15 metrics a day)",
            f"{f.reconcile_seconds:.2f} s",
            f"{f.reconcile_seconds / f.count_seconds:.2f}x the count(*)",
        ),
        (
            "  of which the distinct recipients of opens and clicks (2 trend metrics)",
            f"{f.unique_seconds:.2f} s",
            f"{f.unique_seconds / f.reconcile_seconds:.0%} of it",
        ),
        (
            "the same without the timestamp indexes",
            f"{f.unindexed_seconds:.2f} s",
            f"{f.unindexed_seconds / f.reconcile_seconds:.1f}x the indexed one",
        ),
        (
            "verdicts (1 day short by 5 deliveries, 29 complete)",
            "right" if f.verdicts_right else "WRONG",
            "found exactly",
        ),
        (
            f"raw COPY of {f.copy_rows:,} events, without the timestamp indexes, rows/s",
            f"{f.copy_unindexed:,.0f}",
            "1.00x",
        ),
        (
            "the same COPY with them (what the index costs the write path)",
            f"{f.copy_indexed:,.0f}",
            f"{f.copy_indexed / f.copy_unindexed:.2f}x",
        ),
    ]


async def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        figures = await run(args.database_url, Path(workdir), events=args.events)
    for row in summary(figures):
        print(" | ".join(row))


if __name__ == "__main__":
    asyncio.run(_main())
