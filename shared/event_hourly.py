"""Events stored per hour and event type over the last hours: the console's first chart.

Counted by `received_at`, when the receiver stored the event, and only the webhook's events
(`origin`; a backfill's are history, not flow): that is what "is data flowing?" asks, it is
what the 24-hour counts of the webhook summary use, and every event table has an index on
(`received_at`, `origin`), so the count reads only the window's index entries, never the
whole table
(`scripts/bench --only console` measures it against a full count over 10M stored events).
One statement for all the event tables (a UNION ALL of one grouped count each), so a source
costs one round trip whatever its number of tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.events import EVENT_TYPES
from shared.schemas import EventSeries, HourlyEvents
from shared.source_rows import Source
from shared.tables import source_tables

MAX_HOURS = 24 * 7
_HOUR = timedelta(hours=1)
# SQLite holds the time as SQLAlchemy writes it, in UTC ("2026-12-01 10:04:05.123456", the
# same for the bulk writers, which convert through the column's type): the hour is its first
# 13 characters, cut with substr (several times cheaper per row than strftime).
_SQLITE_HOUR = "%Y-%m-%d %H"


def _hour_of(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    if dialect == "postgresql":
        # In UTC whatever the session's time zone: the hours are UTC hours.
        return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))
    return sa.func.substr(column, 1, 13)


def _as_hour(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.strptime(value, _SQLITE_HOUR).replace(tzinfo=UTC)
    moment: datetime = value
    return moment.replace(tzinfo=UTC)


def hourly_counts_query(schema: str, start: datetime, dialect: str) -> sa.CompoundSelect[Any]:
    """(table, hour, events) for every table and hour since `start` that holds events."""
    selects = []
    for name, table in source_tables(schema).events.items():
        hour = _hour_of(table.c.received_at, dialect)
        selects.append(
            sa.select(
                sa.literal(name, sa.Text).label("tbl"),
                hour.label("hour"),
                sa.func.count().label("events"),
            )
            .where(table.c.received_at >= start, table.c.origin == "webhook")
            .group_by(hour)
        )
    return sa.union_all(*selects)


async def hourly_events(
    engine: AsyncEngine, source: Source, hours: int, now: datetime
) -> HourlyEvents:
    """The last `hours` hours up to and including the current one, every event type listed
    (zeros too), so a chart and a table can be drawn from the answer alone."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + _HOUR
    start = end - hours * _HOUR
    slots = [start + i * _HOUR for i in range(hours)]
    position = {slot: i for i, slot in enumerate(slots)}
    counts = {table: [0] * hours for table, _ in EVENT_TYPES.values()}
    query = hourly_counts_query(source.schema_name, start, engine.dialect.name)
    async with engine.connect() as connection:
        for table, hour, events in await connection.execute(query):
            at = position.get(_as_hour(hour))
            if at is not None:  # a clock ahead of ours would put events past `end`
                counts[table][at] = int(events)
    return HourlyEvents(
        source_id=source.id,
        start=start,
        end=end,
        hours=slots,
        series=[
            EventSeries(event=event, table=table, counts=counts[table], total=sum(counts[table]))
            for event, (table, _) in EVENT_TYPES.items()
        ],
    )
