"""A funnel over the `activity` view, on PostgreSQL (the SQL warehouse) and on ClickHouse, with
the same stored events in both, side by side in the same run: per campaign, the recipients
delivered to, of them those who opened, and of those the ones who clicked, over every stored
event. The answers must be equal, or the benchmark fails.

The events are the console benchmark's (`bench.console`: every type in the mix of
bench/events.py, spread over 30 days), with a recipient and a campaign each. Each database
writes them itself from the same generator (`fill_sql`, with the same anchor time), which is
the fast way to load them: PostgreSQL with generate_series (indexes built after, then VACUUM
ANALYZE), ClickHouse with `system.numbers` into a source database made as the receiver makes
it, then `OPTIMIZE ... FINAL` on each table, the state its background merges leave data that
stopped changing, as VACUUM is PostgreSQL's. Loading is not what is measured.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from clickhouse_driver import Client

from bench.console import fill_sql, fills, load
from shared.clickhouse import ClickHouseTarget
from shared.clickhouse_tables import quoted, source_database_statements
from shared.db import create_engine
from shared.migrate import upgrade_control_schema
from shared.tables import source_tables

SCHEMA = "bench_funnel"
REPEATS = 3
CAMPAIGNS = 20
# Events per recipient: each has a few deliveries, opens and clicks, in any campaign.
EVENTS_PER_RECIPIENT = 10
# Rows a bulk insert into ClickHouse carries.
BLOCK_ROWS = 200_000
# PostgreSQL's memory for the funnel's grouping (per sort or hash, per process): the default
# (4 MB) spills it to disk; a PostgreSQL that serves analysts is given more.
WORK_MEM = "256MB"

STEPS = ("delivered", "open", "click")

POSTGRES_FUNNEL = f"""
SELECT campaign,
       count(*) FILTER (WHERE delivered),
       count(*) FILTER (WHERE delivered AND opened),
       count(*) FILTER (WHERE delivered AND opened AND clicked)
FROM (
    SELECT marketing_campaign_id AS campaign, email,
           bool_or(event = 'delivered') AS delivered,
           bool_or(event = 'open') AS opened,
           bool_or(event = 'click') AS clicked
    FROM {{schema}}.activity
    WHERE event IN {STEPS}
    GROUP BY marketing_campaign_id, email
) AS recipients
GROUP BY campaign
ORDER BY campaign
"""

CLICKHOUSE_FUNNEL = f"""
SELECT campaign,
       countIf(delivered),
       countIf(delivered AND opened),
       countIf(delivered AND opened AND clicked)
FROM (
    SELECT marketing_campaign_id AS campaign, email,
           max(event = 'delivered') AS delivered,
           max(event = 'open') AS opened,
           max(event = 'click') AS clicked
    FROM {{database}}.`activity`
    WHERE event IN {STEPS}
    GROUP BY marketing_campaign_id, email
)
GROUP BY campaign
ORDER BY campaign
"""

Answer = list[tuple[int | None, int, int, int]]


@dataclass
class FunnelFigures:
    events: int
    campaigns: int
    recipients_delivered: int
    load_postgres_s: float
    load_clickhouse_s: float
    postgres_s: float
    clickhouse_s: float
    postgres_runs: list[float]
    clickhouse_runs: list[float]


def recipients(events: int) -> int:
    """How many recipients the events go to: each gets about EVENTS_PER_RECIPIENT."""
    return max(1, events // EVENTS_PER_RECIPIENT)


def generated_columns(dialect: str, events: int) -> dict[str, str]:
    """A recipient and a campaign for each generated event, over its number `g`: the same
    values in PostgreSQL and in ClickHouse. Recipient r's events fall into campaigns r,
    r + 1 and r + 2 (modulo CAMPAIGNS), each event's picked by the first 28 bits of the MD5
    of g (the same function in both), so one recipient's deliveries, opens and clicks meet in
    a campaign as chance has it, with no pattern from the order the tables are filled in."""
    if dialect == "postgresql":
        number = "g::bigint"
        hashed = "('x' || substr(md5(g::text), 1, 7))::bit(28)::int"
        email = "'user' || {recipient} || '@example.com'"
    else:
        number = "g"
        hashed = "intDiv(reinterpretAsUInt32(reverse(substring(MD5(toString(g)), 1, 4))), 16)"
        email = "concat('user', toString({recipient}), '@example.com')"
    recipient = f"(({number} * 7919) % {recipients(events)})"
    return {
        "email": email.format(recipient=recipient),
        "marketing_campaign_id": f"({recipient} + {hashed} % 3) % {CAMPAIGNS}",
    }


def clickhouse_client(url: str) -> Client:
    target = ClickHouseTarget.from_url(url)
    return Client(
        host=target.host,
        port=target.port,
        database=target.database,
        user=target.user,
        password=target.password,
        send_receive_timeout=600,
    )


async def _load_clickhouse(client: Client, events: int, anchor: int) -> None:
    """The same events as on PostgreSQL, written by ClickHouse itself from the same
    generator, then each table merged to one part a month."""
    await asyncio.to_thread(client.execute, f"DROP DATABASE IF EXISTS {quoted(SCHEMA)}")
    for statement in source_database_statements(SCHEMA):  # one server
        await asyncio.to_thread(client.execute, statement.sql)
    extra = generated_columns("clickhouse", events)
    for fill in fills(events):
        sql = fill_sql("clickhouse", fill, schema=SCHEMA, anchor=anchor, extra=extra)
        await asyncio.to_thread(client.execute, sql)
    for table in source_tables(SCHEMA).events:
        await asyncio.to_thread(
            client.execute, f"OPTIMIZE TABLE {quoted(SCHEMA)}.{quoted(table)} FINAL"
        )


async def _timed(call: Callable[[], Awaitable[Answer]]) -> tuple[Answer, list[float]]:
    """The answer, and the seconds of each of REPEATS calls (the first one cold); every call
    must answer the same."""
    answers, times = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answers.append(await call())
        times.append(time.perf_counter() - started)
    if any(answer != answers[0] for answer in answers):
        raise RuntimeError("the funnel answered differently on the same data")
    return answers[0], times


def _rows(rows: Any) -> Answer:
    return [
        (None if campaign is None else int(campaign), int(d), int(o), int(c))
        for campaign, d, o, c in rows
    ]


async def run(database_url: str, clickhouse_url: str, *, events: int) -> FunnelFigures:
    await asyncio.to_thread(upgrade_control_schema, database_url)
    engine = create_engine(database_url)
    client = clickhouse_client(clickhouse_url)
    try:
        anchor = int(time.time())
        started = time.perf_counter()
        extra = generated_columns("postgresql", events)
        await load(engine, events, schema=SCHEMA, anchor=anchor, extra=extra)
        load_postgres_s = time.perf_counter() - started
        started = time.perf_counter()
        await _load_clickhouse(client, events, anchor)
        load_clickhouse_s = time.perf_counter() - started

        async def on_postgres() -> Answer:
            async with engine.begin() as connection:
                await connection.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
                result = await connection.execute(sa.text(POSTGRES_FUNNEL.format(schema=SCHEMA)))
                return _rows(result.all())

        async def on_clickhouse() -> Answer:
            sql = CLICKHOUSE_FUNNEL.format(database=quoted(SCHEMA))
            return _rows(await asyncio.to_thread(client.execute, sql))

        postgres, postgres_runs = await _timed(on_postgres)
        clickhouse, clickhouse_runs = await _timed(on_clickhouse)
        if postgres != clickhouse:
            differing = [(p, c) for p, c in zip(postgres, clickhouse, strict=False) if p != c]
            raise RuntimeError(
                "the funnel's answers differ between PostgreSQL and ClickHouse: "
                f"{len(postgres)} and {len(clickhouse)} campaigns; first rows differing "
                f"(campaign, delivered, opened, clicked), PostgreSQL then ClickHouse: "
                f"{differing[:3]}"
            )
        return FunnelFigures(
            events=events,
            campaigns=len(postgres),
            recipients_delivered=sum(row[1] for row in postgres),
            load_postgres_s=load_postgres_s,
            load_clickhouse_s=load_clickhouse_s,
            postgres_s=statistics.median(postgres_runs),
            clickhouse_s=statistics.median(clickhouse_runs),
            postgres_runs=postgres_runs,
            clickhouse_runs=clickhouse_runs,
        )
    finally:
        client.disconnect()
        await engine.dispose()


def summary(f: FunnelFigures) -> list[tuple[str, str, str]]:
    def runs(times: list[float]) -> str:
        return ", ".join(f"{t:.2f}" for t in times)

    return [
        (
            "stored events (every type, 30 days), the same in both",
            f"{f.events:,}",
            f"written in {f.load_postgres_s:.0f} s (PostgreSQL), "
            f"{f.load_clickhouse_s:.0f} s (ClickHouse)",
        ),
        (
            "funnel answer: campaigns / recipients delivered to (summed over campaigns)",
            f"{f.campaigns} / {f.recipients_delivered:,}",
            "equal on both",
        ),
        (
            f"baseline: funnel on PostgreSQL (work_mem {WORK_MEM}), s",
            f"{f.postgres_s:.2f} (median of {REPEATS}, the first cold: {runs(f.postgres_runs)})",
            "1.00×",
        ),
        (
            "funnel on ClickHouse (activity view, FINAL), s",
            f"{f.clickhouse_s:.2f} (median of {REPEATS}, the first cold: "
            f"{runs(f.clickhouse_runs)})",
            f"PostgreSQL's time / ClickHouse's = {f.postgres_s / f.clickhouse_s:.1f}×",
        ),
    ]
