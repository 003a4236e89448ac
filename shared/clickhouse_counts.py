"""The event counts (`shared.event_counts.EventCounts`) on ClickHouse.

Every count reads its tables with `FINAL`, so an event counts once even while a copy that
slipped in (two receivers storing one resend at the same moment) waits for a merge; the
conditions then apply to the merged rows (18.16 and current releases keep a `WHERE` after
`FINAL` unless told otherwise). Times are bound as whole seconds since the epoch
(`toDateTime(n)`), which mean one moment whatever the server's time zone; the tables hold
whole seconds, so a window starting within a second counts that second whole. Hours come
back as seconds too (`toUInt32`), so no time zone is read from the server either.

A source's database and tables are made by its first write (`shared.clickhouse_event_rows`):
a source that has not received any event yet has none of them, and counts zero; a table
missing from a database is left out of the count rather than failing the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from clickhouse_driver.errors import ServerException
from clickhouse_driver.util.escape import escape_param

from shared.clickhouse import ClickHouse
from shared.clickhouse_databases import is_gone
from shared.clickhouse_tables import quoted
from shared.completeness_metrics import COMPARED_TABLES, METRICS, MetricCount
from shared.identifiers import validate_schema_name
from shared.stats_days import DayRange
from shared.tables import source_tables


def _text(value: str) -> str:
    """A string literal, escaped by the driver (the values are the product's own names and
    SendGrid's reasons; the statements are built before their parameters are substituted)."""
    literal: str = escape_param(value, {})
    return literal


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp()) if moment.tzinfo else int(moment.replace(tzinfo=UTC).timestamp())


def _webhook_since(table: str) -> str:
    return (
        f"SELECT {_text(table)} AS tbl, count() AS events FROM {{db}}.{quoted(table)} FINAL "
        "WHERE `received_at` >= toDateTime(%(since)s) AND `origin` = 'webhook'"
    )


def _webhook_hourly(table: str) -> str:
    return (
        f"SELECT {_text(table)} AS tbl, toUInt32(toStartOfHour(`received_at`)) AS at_hour, "
        f"count() AS events FROM {{db}}.{quoted(table)} FINAL "
        "WHERE `received_at` >= toDateTime(%(start)s) AND `origin` = 'webhook' GROUP BY at_hour"
    )


def _metric(metric: MetricCount) -> str:
    # NULLs are not counted (as SQL's count(DISTINCT)); over no row 18.16 answers NULL for a
    # Nullable column where current releases answer 0, hence ifNull.
    counted = f"ifNull(uniqExact({quoted(metric.distinct)}), 0)" if metric.distinct else "count()"
    sql = (
        f"SELECT {_text(metric.metric)} AS metric, {counted} AS stored "
        f"FROM {{db}}.{quoted(metric.table)} FINAL "
        "WHERE `timestamp` >= toDateTime(%(start)s) AND `timestamp` < toDateTime(%(end)s)"
    )
    if metric.column is not None and metric.value is not None:
        sql += f" AND {quoted(metric.column)} = {_text(metric.value)}"
    return sql


def _earliest(table: str) -> str:
    # min() of no row is 0 (1970) in ClickHouse, not NULL: the count tells an empty table.
    return (
        f"SELECT toUInt32(min(`timestamp`)) AS earliest, count() AS events "
        f"FROM {{db}}.{quoted(table)}"
    )


class ClickHouseEventCounts:
    """Counts of the event tables of every source on one ClickHouse server."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse

    async def _union(
        self,
        schema: str,
        branches: Iterable[tuple[str, str]],
        params: dict[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """The rows of a UNION ALL of `branches` ((table, SELECT with `{db}`)), over the
        tables the source's database has."""
        database = quoted(validate_schema_name(schema))
        chosen = list(branches)
        try:
            return await self._select(database, chosen, params)
        except ServerException as exc:
            if not is_gone(exc):
                raise
        present = {
            name
            for (name,) in await self.clickhouse.execute(
                "SELECT name FROM system.tables WHERE database = %(db)s", {"db": schema}
            )
        }
        return await self._select(database, [b for b in chosen if b[0] in present], params)

    async def _select(
        self, database: str, branches: list[tuple[str, str]], params: dict[str, Any] | None
    ) -> list[tuple[Any, ...]]:
        if not branches:
            return []
        sql = "\nUNION ALL\n".join(select.replace("{db}", database) for _, select in branches)
        return await self.clickhouse.execute(sql, params)

    async def received_since(self, schema: str, since: datetime) -> dict[str, int]:
        names = list(source_tables(schema).events)
        rows = await self._union(schema, _each(names, _webhook_since), {"since": _seconds(since)})
        counts = dict.fromkeys(names, 0)
        counts.update({str(table): int(events) for table, events in rows})
        return counts

    async def received_hourly(
        self, schema: str, start: datetime
    ) -> list[tuple[str, datetime, int]]:
        names = list(source_tables(schema).events)
        rows = await self._union(schema, _each(names, _webhook_hourly), {"start": _seconds(start)})
        return [
            (str(table), datetime.fromtimestamp(int(hour), UTC), int(events))
            for table, hour, events in rows
        ]

    async def day_counts(self, schema: str, day: DayRange) -> dict[str, int]:
        branches = [(metric.table, _metric(metric)) for metric in METRICS]
        rows = await self._union(
            schema, branches, {"start": _seconds(day.start), "end": _seconds(day.end)}
        )
        counts = {metric.metric: 0 for metric in METRICS}
        counts.update({str(metric): int(stored) for metric, stored in rows})
        return counts

    async def earliest_event(self, schema: str) -> datetime | None:
        rows = await self._union(schema, _each(COMPARED_TABLES, _earliest))
        moments = [int(earliest) for earliest, events in rows if events]
        return datetime.fromtimestamp(min(moments), UTC) if moments else None

    async def close(self) -> None:
        await self.clickhouse.close()


def _each(names: Iterable[str], select: Callable[[str], str]) -> list[tuple[str, str]]:
    return [(name, select(name)) for name in names]
