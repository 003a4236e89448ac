"""The console's aggregates over a big source: events per hour for the last 48 hours
(`GET /sources/{id}/events/hourly`), and the 24-hour counts every overview row reads
(`webhook_summary`), against a full `count(*)` of the same event tables, measured side by
side in the same run. Also the hourly count with the planner kept off the `received_at`
index, to show what the index is worth.

The events are written by the database itself (generate_series, or a recursive CTE on
SQLite): ids, types in the mix of bench/events.py, and `received_at` spread evenly over the
last 30 days, so the 48-hour window holds 1/15 of them. Then ANALYZE (and VACUUM on
PostgreSQL, as autovacuum would do for an append-only table) before measuring.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.events import MIX
from shared.clock import utcnow
from shared.db import create_engine
from shared.event_hourly import hourly_events
from shared.events import EVENT_TYPES
from shared.migrate import upgrade_control_schema
from shared.source_rows import SourceRows
from shared.sql_event_counts import SqlEventCounts, hourly_counts_query
from shared.tables import SOURCE_SCHEMA_VERSION, source_tables, sources, webhook_stats
from shared.warehouse import create_source_schema
from shared.webhook_summary import webhook_summary

SCHEMA = "bench_console"
SPREAD = timedelta(days=30)
REPEATS = 5


@dataclass
class Figures:
    backend: str
    events: int
    in_window: int
    load_s: float
    count_all_s: float
    hourly_s: float
    hourly_no_index_s: float
    summary_s: float


def _shares(events: int) -> dict[str, int]:
    """Events per table, in the mix of a sending account."""
    weights = {kind: share for kind, share in MIX}
    total = sum(weights.values())
    counts = {EVENT_TYPES[kind][0]: int(events * share / total) for kind, share in weights.items()}
    counts["processed"] += events - sum(counts.values())
    return counts


def _fill_sql(dialect: str, table: str, event: str, count: int, offset: int) -> str:
    spread = int(SPREAD.total_seconds())
    if dialect == "postgresql":
        return (
            f"INSERT INTO {SCHEMA}.{table} (id, event, timestamp, custom_args, raw, received_at) "
            f"SELECT 'e' || g, '{event}', now() - (g % {spread}) * interval '1 second', "
            "'{}'::jsonb, '{}'::jsonb, "
            f"now() - ((g::bigint * 7919) % {spread}) * interval '1 second' "
            f"FROM generate_series({offset + 1}, {offset + count}) AS g"
        )
    stamp = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ((n * 7919) % {s}) || ' seconds')"
    return (
        f"WITH RECURSIVE g(n) AS (SELECT {offset + 1} UNION ALL SELECT n + 1 FROM g "
        f"WHERE n < {offset + count}) "
        f"INSERT INTO {SCHEMA}.{table} (id, event, timestamp, custom_args, raw, received_at) "
        f"SELECT 'e' || n, '{event}', {stamp.format(s=spread)}, '{{}}', '{{}}', "
        f"{stamp.format(s=spread)} FROM g"
    )


async def _median(call: Callable[[], Awaitable[Any]]) -> float:
    await call()  # warm: plans cached, pages in memory, as on a console refreshed every 30 s
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _load(engine: AsyncEngine, events: int) -> str:
    source_id = str(uuid.uuid4())
    now = utcnow()
    async with engine.begin() as connection:
        await create_source_schema(connection, SCHEMA)
        await connection.execute(
            sources.insert().values(
                id=source_id,
                name="Bench console",
                schema_name=SCHEMA,
                region="global",
                api_key_encrypted="-",
                api_key_fingerprint="-",
                scopes=[],
                webhook_token_encrypted="-",  # noqa: S106 (never read here)
                schema_version=SOURCE_SCHEMA_VERSION,
                created_at=now,
                updated_at=now,
            )
        )
        await connection.execute(webhook_stats.insert().values(source_id=source_id))
    dialect = engine.dialect.name
    offset = 0
    kinds = {table: event for event, (table, _) in EVENT_TYPES.items()}
    for table, count in _shares(events).items():
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(_fill_sql(dialect, table, kinds[table], count, offset))
            )
        offset += count
    if dialect == "postgresql":
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in source_tables(SCHEMA).events:
                await autocommit.execute(sa.text(f"VACUUM ANALYZE {SCHEMA}.{table}"))
    else:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"ANALYZE {SCHEMA}"))
    return source_id


async def run(database_url: str, *, events: int) -> Figures:
    await asyncio.to_thread(upgrade_control_schema, database_url)
    engine = create_engine(database_url)
    try:
        started = time.perf_counter()
        source_id = await _load(engine, events)
        load_s = time.perf_counter() - started
        source = await SourceRows(engine).get(source_id)
        tables = source_tables(SCHEMA).events

        async def count_all() -> int:
            async with engine.connect() as connection:
                total = 0
                for table in tables.values():
                    total += int(
                        await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0
                    )
                return total

        async def hourly() -> Any:
            return await hourly_events(SqlEventCounts(engine), source, 48, utcnow())

        async def hourly_no_index() -> None:
            start = utcnow() - timedelta(hours=48)
            query = hourly_counts_query(SCHEMA, start, engine.dialect.name)
            async with engine.connect() as connection:
                if engine.dialect.name == "postgresql":
                    for setting in (
                        "enable_indexscan",
                        "enable_bitmapscan",
                        "enable_indexonlyscan",
                    ):
                        await connection.execute(sa.text(f"SET LOCAL {setting} = off"))
                    (await connection.execute(query)).all()
                else:
                    # SQLite: the same counts with the index made unusable (+received_at).
                    body = str(
                        query.compile(
                            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                        )
                    )
                    (
                        await connection.execute(
                            sa.text(body.replace(".received_at >=", ".received_at + 0 >="))
                        )
                    ).all()

        async def summary() -> Any:
            return await webhook_summary(engine, SqlEventCounts(engine), source)

        assert await count_all() == events
        answer = await hourly()
        in_window = sum(s.total for s in answer.series)
        return Figures(
            backend=engine.dialect.name,
            events=events,
            in_window=in_window,
            load_s=load_s,
            count_all_s=await _median(count_all),
            hourly_s=await _median(hourly),
            hourly_no_index_s=await _median(hourly_no_index),
            summary_s=await _median(summary),
        )
    finally:
        await engine.dispose()


def summary(f: Figures) -> list[tuple[str, str, str]]:
    ms = 1000
    return [
        ("stored events (spread over 30 days)", f"{f.events:,}", f"written in {f.load_s:.0f} s"),
        (
            "events in the 48-hour window",
            f"{f.in_window:,}",
            f"{f.in_window / f.events:.1%} of all",
        ),
        ("baseline: count(*) of every event table", f"{f.count_all_s * ms:,.0f} ms", "1.00×"),
        (
            "GET /events/hourly?hours=48 (hourly_events)",
            f"{f.hourly_s * ms:,.0f} ms",
            f"{f.hourly_s / f.count_all_s:.2f}× the baseline",
        ),
        (
            "the same counts, received_at index not used",
            f"{f.hourly_no_index_s * ms:,.0f} ms",
            f"{f.hourly_no_index_s / f.count_all_s:.2f}× the baseline; "
            f"the index makes it {f.hourly_no_index_s / f.hourly_s:.1f}× faster",
        ),
        (
            "24-hour counts of an overview row (webhook_summary)",
            f"{f.summary_s * ms:,.0f} ms",
            f"{f.summary_s / f.count_all_s:.2f}× the baseline",
        ),
    ]
