"""The event counts (`shared.event_counts.EventCounts`) on PostgreSQL and SQLite, where the
event tables live in the source's schema of the control database.

Each count is served by an index of the event tables (`shared.tables`): what the webhook
received lately by (`received_at`, `origin`), so the count reads only the window's index
entries, never the whole table (`scripts/bench --only console` measures it against a full
count over 10M stored events); a day's metrics by `timestamp` (with `email` for opens and
clicks, so the distinct recipients read no row either). Each job is one statement for all
the tables it counts (a UNION ALL of one count each), so a source costs one round trip
whatever its number of tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.completeness_metrics import COMPARED_TABLES, METRICS, MetricCount
from shared.stats_days import DayRange
from shared.tables import SourceTables, source_tables

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


def received_since_query(schema: str, since: datetime) -> sa.CompoundSelect[Any]:
    """(table, events) the webhook stored since `since`, one row per table."""
    return sa.union_all(
        *(
            sa.select(sa.literal(name, sa.Text).label("tbl"), sa.func.count().label("events"))
            .select_from(table)
            .where(table.c.received_at >= since, table.c.origin == "webhook")
            for name, table in source_tables(schema).events.items()
        )
    )


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


def _count(tables: SourceTables, metric: MetricCount) -> sa.Select[str, int]:
    table = tables.events[metric.table]
    counted = (
        sa.func.count(sa.distinct(table.c[metric.distinct])) if metric.distinct else sa.func.count()
    )
    query = (
        sa.select(sa.literal(metric.metric, sa.String).label("metric"), counted.label("stored"))
        .select_from(table)
        .where(
            table.c.timestamp >= sa.bindparam("start", type_=table.c.timestamp.type),
            table.c.timestamp < sa.bindparam("end", type_=table.c.timestamp.type),
        )
    )
    if metric.column is not None:
        query = query.where(table.c[metric.column] == metric.value)
    return query


def day_counts_query(
    tables: SourceTables, metrics: tuple[MetricCount, ...] = METRICS
) -> sa.CompoundSelect[Any]:
    """One row (metric, stored) per metric, for the day bound as `start`/`end`."""
    return sa.union_all(*(_count(tables, metric) for metric in metrics))


def earliest_event_query(tables: SourceTables) -> sa.Select[Any]:
    """The earliest event time among the compared tables: each table's minimum is one step
    along its `timestamp` index."""
    earliest = sa.union_all(
        *(
            sa.select(sa.func.min(tables.events[name].c.timestamp).label("moment"))
            for name in COMPARED_TABLES
        )
    ).subquery()
    return sa.select(sa.func.min(earliest.c.moment))


class SqlEventCounts:
    """Counts of the event tables in the database of `engine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def received_since(self, schema: str, since: datetime) -> dict[str, int]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(received_since_query(schema, since))
        return {str(table): int(events) for table, events in rows}

    async def received_hourly(
        self, schema: str, start: datetime
    ) -> list[tuple[str, datetime, int]]:
        query = hourly_counts_query(schema, start, self.engine.dialect.name)
        async with self.engine.connect() as connection:
            rows = await connection.execute(query)
        return [(str(table), _as_hour(hour), int(events)) for table, hour, events in rows]

    async def day_counts(self, schema: str, day: DayRange) -> dict[str, int]:
        query = day_counts_query(source_tables(schema))
        async with self.engine.connect() as connection:
            rows = await connection.execute(query, {"start": day.start, "end": day.end})
        return {str(metric): int(stored) for metric, stored in rows}

    async def earliest_event(self, schema: str) -> datetime | None:
        async with self.engine.connect() as connection:
            moment: datetime | None = await connection.scalar(
                earliest_event_query(source_tables(schema))
            )
        return moment

    async def close(self) -> None:
        return None  # the engine belongs to the caller
