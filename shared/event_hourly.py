"""Events stored per hour and event type over the last hours: the console's first chart.

Counted by `received_at`, when the receiver stored the event, and only the webhook's events
(`origin`; a backfill's are history, not flow): that is what "is data flowing?" asks, and it
is what the 24-hour counts of the webhook summary use. The warehouse counts
(`shared.event_counts`: one statement for all the event tables); this fills in the hours and
types without events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.event_counts import EventCounts
from shared.events import EVENT_TYPES
from shared.schemas import EventSeries, HourlyEvents
from shared.source_rows import Source

MAX_HOURS = 24 * 7
_HOUR = timedelta(hours=1)


async def hourly_events(
    counts: EventCounts, source: Source, hours: int, now: datetime
) -> HourlyEvents:
    """The last `hours` hours up to and including the current one, every event type listed
    (zeros too), so a chart and a table can be drawn from the answer alone."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + _HOUR
    start = end - hours * _HOUR
    slots = [start + i * _HOUR for i in range(hours)]
    position = {slot: i for i, slot in enumerate(slots)}
    series = {table: [0] * hours for table, _ in EVENT_TYPES.values()}
    for table, hour, events in await counts.received_hourly(source.schema_name, start):
        at = position.get(hour)
        if at is not None:  # a clock ahead of ours would put events past `end`
            series[table][at] = events
    return HourlyEvents(
        source_id=source.id,
        start=start,
        end=end,
        hours=slots,
        series=[
            EventSeries(event=event, table=table, counts=series[table], total=sum(series[table]))
            for event, (table, _) in EVENT_TYPES.items()
        ],
    )
