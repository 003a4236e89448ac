"""What the product counts from a source's event tables, wherever they live: the webhook's
events lately (the 24-hour counts, the console's hours) and each day's events by SendGrid
metric (the reconciliation). The one place choosing the warehouse's counting is
`event_counts`: ClickHouse when WAREHOUSE_URL names one (`shared.clickhouse_counts`),
otherwise the control database's own tables (`shared.sql_event_counts`). Both give the same
answers for the same stored events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clickhouse import ClickHouse
from shared.clickhouse_counts import ClickHouseEventCounts
from shared.settings import Settings
from shared.sql_event_counts import SqlEventCounts
from shared.stats_days import DayRange


class EventCounts(Protocol):
    """Counts of one warehouse's event tables; `schema` is the source's."""

    async def received_since(self, schema: str, since: datetime) -> dict[str, int]:
        """Events the webhook stored (origin `webhook`) since `since`, per table (every
        table listed, zeros too)."""
        ...

    async def received_hourly(
        self, schema: str, start: datetime
    ) -> list[tuple[str, datetime, int]]:
        """(table, UTC hour, events) for each table and hour since `start` (an hour's start)
        in which the webhook stored events; hours without any are left out."""
        ...

    async def day_counts(self, schema: str, day: DayRange) -> dict[str, int]:
        """Each metric's stored count (`shared.completeness_metrics.METRICS`) for `day`,
        whatever the events' origin."""
        ...

    async def earliest_event(self, schema: str) -> datetime | None:
        """The earliest event time among the tables the metrics compare (None: none)."""
        ...

    async def close(self) -> None: ...


def event_counts(settings: Settings, engine: AsyncEngine) -> EventCounts:
    """The counts of the warehouse `settings` names; `engine` is the control database's."""
    url = settings.clickhouse_url
    if url is not None:
        # A pool of its own: reads never wait behind the receiver's writing lanes.
        return ClickHouseEventCounts(ClickHouse(url, size=2))
    return SqlEventCounts(engine)
