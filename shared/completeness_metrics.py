"""Which stored events each metric of SendGrid's daily statistics counts (more-apis.md §3.4),
and the query counting them for one day.

A metric is *alarmed* when its webhook counterpart is one event per counted email, so that a
difference means events are missing (or extra): `processed`, `delivered`, `bounces`,
`blocks`, the three drop reasons, `invalid_emails`, `opens`, `clicks`, `spam_reports`,
`unsubscribes`. The others are kept beside them as *trends*, never alarmed on: `deferred`
(the webhook sends one event per delivery attempt, and whether SendGrid counts attempts or
emails is not documented) and `unique_opens`/`unique_clicks` (SendGrid judges uniqueness over
a 7-day window the webhook cannot reproduce; they are compared with the distinct addresses
of the day). `requests` has no webhook counterpart at all and is not compared; nor are drops
for reasons SendGrid's statistics leave out (Spam Content, Invalid SMTPAPI header, ...).

Each day is one statement: a `UNION ALL` of one range count per metric, so a day costs one
round trip, and the range on `timestamp` is served by each event table's index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.stats_days import DayRange
from shared.tables import SourceTables


@dataclass(frozen=True)
class MetricCount:
    """SendGrid's `metric` against the rows of `table` (with `column == value`, when set)."""

    metric: str
    table: str
    column: str | None = None
    value: str | None = None
    alarmed: bool = True
    # Count the distinct values of this column instead of the rows (unique metrics).
    distinct: str | None = None


METRICS: tuple[MetricCount, ...] = (
    MetricCount("processed", "processed"),
    MetricCount("delivered", "delivered"),
    MetricCount("bounces", "bounce", "type", "bounce"),
    MetricCount("blocks", "bounce", "type", "blocked"),
    MetricCount("bounce_drops", "dropped", "reason", "Bounced Address"),
    MetricCount("spam_report_drops", "dropped", "reason", "Spam Reporting Address"),
    MetricCount("unsubscribe_drops", "dropped", "reason", "Unsubscribed Address"),
    MetricCount("invalid_emails", "dropped", "reason", "Invalid"),
    MetricCount("opens", "_open"),
    MetricCount("clicks", "click"),
    MetricCount("spam_reports", "spam_report"),
    MetricCount("unsubscribes", "unsubscribe"),
    MetricCount("deferred", "deferred", alarmed=False),
    MetricCount("unique_opens", "_open", alarmed=False, distinct="email"),
    MetricCount("unique_clicks", "click", alarmed=False, distinct="email"),
)

BY_METRIC: dict[str, MetricCount] = {metric.metric: metric for metric in METRICS}
ALARMED: tuple[str, ...] = tuple(metric.metric for metric in METRICS if metric.alarmed)
TRENDS: tuple[str, ...] = tuple(metric.metric for metric in METRICS if not metric.alarmed)


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


async def count_day(
    connection: AsyncConnection, tables: SourceTables, day: DayRange
) -> dict[str, int]:
    """Each metric's stored count for `day`."""
    rows = await connection.execute(day_counts_query(tables), {"start": day.start, "end": day.end})
    return {str(metric): int(stored) for metric, stored in rows}


async def collecting_since(connection: AsyncConnection, tables: SourceTables) -> Any:
    """The earliest stored event's time among the compared tables (None when none is stored):
    each table's minimum is one step along its `timestamp` index."""
    names = sorted({metric.table for metric in METRICS})
    earliest = sa.union_all(
        *(sa.select(sa.func.min(tables.events[name].c.timestamp).label("moment")) for name in names)
    ).subquery()
    return await connection.scalar(sa.select(sa.func.min(earliest.c.moment)))
