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
import contextlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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


@dataclass(frozen=True)
class Fill:
    """One event table's generated events: numbers `first` to `first + count - 1` (`g`),
    consecutive across the tables so every id is unique."""

    table: str
    event: str
    first: int
    count: int


def fills(events: int) -> list[Fill]:
    kinds = {table: event for event, (table, _) in EVENT_TYPES.items()}
    made, first = [], 1
    for table, count in _shares(events).items():
        made.append(Fill(table, kinds[table], first, count))
        first += count
    return made


def fill_sql(
    dialect: str,
    fill: Fill,
    *,
    schema: str,
    anchor: int,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The statement writing `fill`'s events, in `dialect` (postgresql, sqlite, or clickhouse,
    where the same events go into a source database of ClickHouse's warehouse). Times count
    back from `anchor` (seconds since the epoch), the same in every dialect. `extra`: more
    columns, as expressions over the event's number `g` in that dialect."""
    spread = int(SPREAD.total_seconds())
    extra = extra or {}
    table, event, last = fill.table, fill.event, fill.first + fill.count - 1
    names = "".join(f", {name}" for name in extra)
    values = "".join(f", {expression}" for expression in extra.values())
    if dialect == "postgresql":
        at = f"to_timestamp({anchor})"
        return (
            f"INSERT INTO {schema}.{table} "
            f"(id, event, timestamp, custom_args, raw, received_at{names}) "
            f"SELECT 'e' || g, '{event}', {at} - (g % {spread}) * interval '1 second', "
            "'{}'::jsonb, '{}'::jsonb, "
            f"{at} - ((g::bigint * 7919) % {spread}) * interval '1 second'{values} "
            f"FROM generate_series({fill.first}, {last}) AS g"
        )
    if dialect == "clickhouse":
        # The SQL tables' `origin` default is written out: ClickHouse's tables have none.
        return (
            f"INSERT INTO `{schema}`.`{table}` "
            f"(id, event, timestamp, custom_args, raw, received_at, origin{names}) "
            f"SELECT concat('e', toString(g)), '{event}', toDateTime({anchor} - g % {spread}), "
            "'{}', '{}', "
            f"toDateTime({anchor} - (g * 7919) % {spread}), 'webhook'{values} "
            f"FROM (SELECT number + {fill.first} AS g FROM system.numbers LIMIT {fill.count})"
        )
    stamp = f"strftime('%Y-%m-%d %H:%M:%f', {anchor}, 'unixepoch', '-' || ({{n}}) || ' seconds')"
    return (
        f"WITH RECURSIVE g(n) AS (SELECT {fill.first} UNION ALL SELECT n + 1 FROM g "
        f"WHERE n < {last}) "
        f"INSERT INTO {schema}.{table} "
        f"(id, event, timestamp, custom_args, raw, received_at{names}) "
        f"SELECT 'e' || n, '{event}', {stamp.format(n=f'n % {spread}')}, '{{}}', '{{}}', "
        f"{stamp.format(n=f'(n * 7919) % {spread}')}{values} FROM g"
    )


@contextlib.asynccontextmanager
async def indexes_built_after(engine: AsyncEngine, schema: str) -> AsyncIterator[None]:
    """On PostgreSQL, the event tables' primary keys and indexes dropped while the body fills
    them, then built over the rows: four times faster here than keeping them up to date row
    by row, and the same tables in the end. Elsewhere, the body alone."""
    if engine.dialect.name != "postgresql":
        yield
        return
    tables = source_tables(schema).events
    async with engine.begin() as connection:
        for name, table in tables.items():
            for index in table.indexes:
                await connection.exec_driver_sql(f"DROP INDEX {schema}.{index.name}")
            await connection.exec_driver_sql(
                f"ALTER TABLE {schema}.{name} DROP CONSTRAINT {name}_pkey"
            )
    yield
    async with engine.begin() as connection:
        for name, table in tables.items():
            await connection.exec_driver_sql(f"ALTER TABLE {schema}.{name} ADD PRIMARY KEY (id)")
            for index in table.indexes:
                await connection.run_sync(index.create)


async def _median(call: Callable[[], Awaitable[Any]]) -> float:
    await call()  # warm: plans cached, pages in memory, as on a console refreshed every 30 s
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def load(
    engine: AsyncEngine,
    events: int,
    *,
    schema: str = SCHEMA,
    anchor: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """A registered source whose tables hold `events` generated events (see the module's
    docstring; `anchor` and `extra` as `fill_sql` takes them; `anchor` defaults to now);
    its id."""
    source_id = str(uuid.uuid4())
    now = utcnow()
    anchor = int(now.timestamp()) if anchor is None else anchor
    async with engine.begin() as connection:
        await create_source_schema(connection, schema)
        await connection.execute(
            sources.insert().values(
                id=source_id,
                name=f"Bench {schema}",
                schema_name=schema,
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
    async with indexes_built_after(engine, schema):
        for fill in fills(events):
            async with engine.begin() as connection:
                await connection.execute(
                    sa.text(fill_sql(dialect, fill, schema=schema, anchor=anchor, extra=extra))
                )
    if dialect == "postgresql":
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in source_tables(schema).events:
                await autocommit.execute(sa.text(f"VACUUM ANALYZE {schema}.{table}"))
    else:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"ANALYZE {schema}"))
    return source_id


async def run(database_url: str, *, events: int) -> Figures:
    await asyncio.to_thread(upgrade_control_schema, database_url)
    engine = create_engine(database_url)
    try:
        started = time.perf_counter()
        source_id = await load(engine, events)
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
