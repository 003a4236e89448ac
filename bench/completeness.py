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

    python -m bench.completeness --database-url postgresql+asyncpg://… --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.ingest import ADMIN_TOKEN, SECRET_KEY
from shared.completeness_metrics import METRICS
from shared.db import create_engine
from shared.migrate import upgrade_control_schema
from shared.reconciliation import Reconciliation
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings, load_settings
from shared.source_rows import SourceRows
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
# Per table: its own columns, as SQL over the row number `g`.
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


@dataclass
class CompletenessFigures:
    events: int
    load_seconds: float
    count_seconds: float  # count(*) of every table the reconciliation reads
    reconcile_seconds: float  # 30 days, every metric, written to `completeness`
    unindexed_seconds: float  # the same without the `timestamp` indexes
    verdicts_right: bool


def _fill_sql(schema: str, table: str, rows: int) -> str:
    """`rows` events of `table`, evenly over DAYS days from FIRST_DAY, in time order."""
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC).timestamp()
    span = DAYS * 86400
    event = EVENTS[table]
    own = OWN_COLUMNS.get(table, {})
    at = f"to_timestamp({start} + (g::float8 * {span}) / {rows})"
    raw_fields = ", ".join(f"'{name}', {expression}" for name, expression in own.items())
    columns = ["id", "event", "email", "timestamp", "sg_event_id", "sg_message_id",
               "category", "custom_args", "raw", "received_at", *own]  # fmt: skip
    if table == "account_status_change":
        columns = ["id", "event", "timestamp", "sg_event_id", "custom_args", "raw",
                   "received_at", "type"]  # fmt: skip
        values = [f"'{event}-' || g", f"'{event}'", at, f"'{event}-' || g", "'{}'::jsonb",
                  f"jsonb_build_object('event', '{event}', 'timestamp', "
                  f"extract(epoch FROM {at})::bigint, 'type', 'compliance_suspend')",
                  at, "'compliance_suspend'"]  # fmt: skip
    else:
        values = [
            f"'{event}-' || g || '-' || md5(g::text)",
            f"'{event}'",
            "'user' || (g * 7919 % 1000000) || '@example.com'",
            at,
            f"'{event}-' || g || '-' || md5(g::text)",
            "substr(md5(g::text), 1, 22) || '.recvd-' || (g % 97)",
            '\'["newsletter", "weekly"]\'::jsonb',
            "jsonb_build_object('userid', (g % 100000)::text, 'campaign', 'spring')",
            "jsonb_build_object("
            f"'email', 'user' || (g * 7919 % 1000000) || '@example.com', 'event', '{event}', "
            f"'timestamp', extract(epoch FROM {at})::bigint, "
            f"'sg_event_id', '{event}-' || g || '-' || md5(g::text), "
            "'sg_message_id', substr(md5(g::text), 1, 22) || '.recvd-' || (g % 97), "
            "'smtp-id', '<' || substr(md5(g::text), 1, 22) || '@ismtpd-' || (g % 50) || '>', "
            "'category', '[\"newsletter\", \"weekly\"]'::jsonb, "
            "'userid', (g % 100000)::text, 'campaign', 'spring'"
            + (f", {raw_fields}" if raw_fields else "")
            + ")",
            at,
            *own.values(),
        ]
    return (
        f"INSERT INTO {schema}.{table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(0, {rows - 1}) AS g"
    )


async def _load(engine: AsyncEngine, schema: str, events: int) -> None:
    for table, share in SHARES.items():
        rows = max(1, round(events * share))
        async with engine.begin() as connection:
            await connection.exec_driver_sql(_fill_sql(schema, table, rows))
    # Autovacuum's end state: the visibility map set, statistics fresh.
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in SHARES:
            await autocommit.exec_driver_sql(f"VACUUM ANALYZE {schema}.{table}")


async def _sendgrid_counts(engine: AsyncEngine, schema: str) -> dict[str, dict[str, int]]:
    """Each day's metrics as SendGrid would count them, from one grouped scan per metric."""
    counted: dict[str, dict[str, int]] = {}
    async with engine.connect() as connection:
        for metric in METRICS:
            counted_value = f"count(DISTINCT {metric.distinct})" if metric.distinct else "count(*)"
            where = f"WHERE {metric.column} = '{metric.value}'" if metric.column else ""
            rows = await connection.exec_driver_sql(
                f"SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, {counted_value} "
                f"FROM {schema}.{metric.table} {where} GROUP BY 1"
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


async def _timestamp_indexes(engine: AsyncEngine, schema: str, *, present: bool) -> None:
    async with engine.begin() as connection:
        for name, table in source_tables(schema).events.items():
            if present:
                for index in table.indexes:
                    await connection.run_sync(index.create, checkfirst=True)
            else:
                await connection.exec_driver_sql(f"DROP INDEX {schema}.ix_{name}_timestamp")


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
                engine, settings, http, registry.secrets, now=lambda: NOW
            )
            # Warm the cache the same way for both: one pass of each first.
            await _count_all(engine, schema)
            await _reconcile(reconciliation, engine, source.id)
            count_seconds = await _count_all(engine, schema)
            reconcile_seconds, right = await _reconcile(reconciliation, engine, source.id)
            await _timestamp_indexes(engine, schema, present=False)
            unindexed_seconds, right_unindexed = await _reconcile(reconciliation, engine, source.id)
            await _timestamp_indexes(engine, schema, present=True)
    finally:
        await engine.dispose()
    return CompletenessFigures(
        events,
        load_seconds,
        count_seconds,
        reconcile_seconds,
        unindexed_seconds,
        right and right_unindexed,
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
            "the same without the timestamp indexes",
            f"{f.unindexed_seconds:.2f} s",
            f"{f.unindexed_seconds / f.reconcile_seconds:.1f}x the indexed one",
        ),
        (
            "verdicts (1 day short by 5 deliveries, 29 complete)",
            "right" if f.verdicts_right else "WRONG",
            "found exactly",
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
