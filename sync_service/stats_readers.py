"""Statistics: the account's daily email statistics, and the totals of each single send and
automation (more-apis.md §3).

Daily statistics keep changing after the day (late opens, clicks, bounces), so every run
reads the last STATS_REREAD_DAYS again, and the first one reads STATS_BACKFILL_DAYS back.
The range is asked for in windows of at most `STATS_WINDOW_DAYS` (peers disagree on whether
/v3/stats pages; a bounded range needs no paging), the last one without `end_date`, which
SendGrid takes as the account's today in its own time zone. Single send and automation
statistics are re-read completely every run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from shared.object_tables import DAILY_METRICS, MARKETING_METRICS
from shared.sendgrid_stats import StatsApiError, parse_day
from sync_service.client import SendGridClient
from sync_service.collection_reader import CollectionReader, ReadContext, Reader, RowPages
from sync_service.cursors import Cursor
from sync_service.errors import SendGridError
from sync_service.object_records import Row
from sync_service.pagination import iterate_token_pages
from sync_service.records import integer, text_or_none

DAILY_STATS = "/v3/stats"
STATS_WINDOW_DAYS = 90
# The marketing statistics endpoints serve at most 50 rows a page (spec).
MARKETING_STATS_PAGE_SIZE = 50


def first_day(context: ReadContext) -> date:
    """The first day this run reads: the re-read window after the last day read, the
    backfill on a first run."""
    today = context.synced_at.astimezone(UTC).date()
    policy, last = context.policy, context.cursor.position
    if last is None:
        return today - timedelta(days=policy.stats_backfill_days - 1)
    return min(last.date(), today - timedelta(days=policy.stats_reread_days - 1))


async def read_daily_stats(client: SendGridClient, context: ReadContext) -> RowPages:
    today = context.synced_at.astimezone(UTC).date()
    start = first_day(context)
    context.scope.complete = False  # a window of days: days before it are not missing
    last: date | None = None
    while start <= today:
        end = start + timedelta(days=STATS_WINDOW_DAYS - 1)
        params = {"start_date": start.isoformat(), "aggregated_by": "day"}
        if end < today:
            params["end_date"] = end.isoformat()
        body = await client.get_json(DAILY_STATS, params)
        if not isinstance(body, list):
            raise SendGridError(f"{DAILY_STATS} did not answer with a JSON array of days")
        rows = [daily_row(entry, context) for entry in body]
        if rows:
            last = max(row["date"] for row in rows)
            yield rows
        start = end + timedelta(days=1)
    first = first_day(context)
    context.scope.window = f"days {first.isoformat()} to {(last or today).isoformat()}"
    if last is not None:
        position = datetime.combine(last, datetime.min.time(), UTC)
        context.scope.next_cursor = Cursor(position, None)


def daily_row(entry: object, context: ReadContext) -> Row:
    try:
        day = parse_day(entry)
    except StatsApiError as exc:
        raise SendGridError(str(exc)) from None
    return {
        "date": day.day,
        **{metric: day.metrics.get(metric) for metric in DAILY_METRICS},
        "raw": entry,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


def _metrics(item: Row) -> dict[str, int | None]:
    stats = item.get("stats")
    values = stats if isinstance(stats, dict) else {}
    return {metric: integer(values.get(metric)) for metric in MARKETING_METRICS}


def singlesend_stats_row(item: Row, context: ReadContext) -> Row:
    # "all" and "total" are what SendGrid answers for a field it was not asked to group by.
    return {
        "id": str(item["id"]),
        "ab_variation": text_or_none(item.get("ab_variation")) or "all",
        "ab_phase": text_or_none(item.get("ab_phase")) or "all",
        "aggregation": text_or_none(item.get("aggregation")) or "total",
        **_metrics(item),
        "raw": item,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


def automation_stats_row(item: Row, context: ReadContext) -> Row:
    return {
        "id": str(item["id"]),
        "step_id": text_or_none(item.get("step_id")) or "all",
        "aggregation": text_or_none(item.get("aggregation")) or "total",
        **_metrics(item),
        "raw": item,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


def _marketing_stats_reader(path: str, build: Callable[[Row, ReadContext], Row]) -> Reader:
    async def read(client: SendGridClient, context: ReadContext) -> RowPages:
        pages = iterate_token_pages(
            client, path, items_key="results", page_size=MARKETING_STATS_PAGE_SIZE
        )
        async for page in pages:
            yield [build(item, context) for item in page]

    return read


STATS_READERS: tuple[CollectionReader, ...] = (
    CollectionReader(
        "stats_daily",
        None,
        DAILY_STATS,
        "SendGrid returned no days",
        read_daily_stats,
        uses_cursor=True,
    ),
    CollectionReader(
        "singlesend_stats",
        None,
        "/v3/marketing/stats/singlesends",
        "no single send has statistics",
        _marketing_stats_reader("/v3/marketing/stats/singlesends", singlesend_stats_row),
    ),
    CollectionReader(
        "automation_stats",
        None,
        "/v3/marketing/stats/automations",
        "no automation has statistics",
        _marketing_stats_reader("/v3/marketing/stats/automations", automation_stats_row),
    ),
)
