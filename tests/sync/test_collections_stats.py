"""Statistics synced end to end against the fake account on SQLite and PostgreSQL: daily
statistics backfilled on the first sync and re-read for the last days after it, and single
send and automation statistics keyed so that variations, phases and steps never collide."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.object_tables import DAILY_METRICS
from shared.settings import Settings
from shared.source_rows import Source
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from sync_service.stats_readers import MARKETING_STATS_PAGE_SIZE, STATS_WINDOW_DAYS
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.sync.test_collections_suppressions import result, stored, sync

SEND = "27c21bbf-a12c-440b-b8bf-c526975328ca"
VARIATION_A = "a14dcc63-d651-4c57-9826-4a3705f5c78d"
VARIATION_B = "b26d5a40-4f6c-4f39-9d6f-1a2b3c4d5e6f"
AUTOMATION = "2a9c3f5e-6b7d-4e8f-9a0b-1c2d3e4f5a6b"


def today() -> date:
    return datetime.now(UTC).date()


async def test_the_first_sync_backfills_daily_stats_and_later_ones_reread_the_last_days(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    settings: Settings,
) -> None:
    yesterday = (today() - timedelta(days=1)).isoformat()
    account.daily_stats[yesterday] = {"processed": 120, "delivered": 118, "opens": 40}
    backfill, reread = settings.STATS_BACKFILL_DAYS, settings.STATS_REREAD_DAYS

    first = await sync(sync_service, source)

    status, upserted, deleted = result(first, "stats_daily")
    assert (status, upserted, deleted) == ("succeeded", backfill, 0)
    queries = account.queries_to("/v3/stats")
    first_day = today() - timedelta(days=backfill - 1)
    assert queries[0]["start_date"] == first_day.isoformat()
    assert queries[0]["end_date"] == (first_day + timedelta(days=STATS_WINDOW_DAYS - 1)).isoformat()
    assert all(q["aggregated_by"] == "day" for q in queries)
    # The last window leaves end_date to SendGrid: the account's today, in its time zone.
    assert "end_date" not in queries[-1]
    rows = await stored(sync_deps, source, "stats_daily")
    day = rows[date.fromisoformat(yesterday)]
    assert (day["processed"], day["delivered"], day["opens"], day["bounces"]) == (120, 118, 40, 0)
    assert set(DAILY_METRICS) <= set(day)
    assert day["raw"]["date"] == yesterday

    # SendGrid keeps counting: yesterday gets late opens.
    account.daily_stats[yesterday]["opens"] = 55
    second = await sync(sync_service, source)

    [reread_query] = account.queries_to("/v3/stats")[len(queries) :]
    assert reread_query["start_date"] == (today() - timedelta(days=reread - 1)).isoformat()
    assert result(second, "stats_daily") == ("succeeded", reread, 0)
    assert (await stored(sync_deps, source, "stats_daily"))[date.fromisoformat(yesterday)][
        "opens"
    ] == 55
    # Days outside the window are neither read again nor marked deleted.
    assert all(
        row["deleted_at"] is None
        for row in (await stored(sync_deps, source, "stats_daily")).values()
    )


async def test_a_403_on_stats_names_the_scope_and_leaves_the_rest(
    account: FakeAccount, source: Source, sync_service: SyncService
) -> None:
    account.forbidden = {"/v3/stats"}

    outcome = await sync(sync_service, source)

    [stats] = [r for r in outcome.collections if r.collection == "stats_daily"]
    assert stats.status == "forbidden"
    assert stats.message is not None
    assert "stats.read" in stats.message
    assert result(outcome, "templates")[0] == "empty"


async def test_single_send_stats_rows_of_one_send_never_collide(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    account.add_singlesend_stat(SEND, requests=10, delivered=9)
    account.add_singlesend_stat(SEND, ab_variation=VARIATION_A, ab_phase="test", delivered=4)
    account.add_singlesend_stat(SEND, ab_variation=VARIATION_B, ab_phase="test", delivered=5)
    account.add_automation_stat(AUTOMATION, opens=7)
    account.add_automation_stat(AUTOMATION, step_id="step-1", opens=3)

    outcome = await sync(sync_service, source)

    assert result(outcome, "singlesend_stats") == ("succeeded", 3, 0)
    assert result(outcome, "automation_stats") == ("succeeded", 2, 0)
    sends = await stored(sync_deps, source, "singlesend_stats")
    assert sends[(SEND, "all", "all", "total")]["delivered"] == 9
    assert sends[(SEND, VARIATION_A, "test", "total")]["delivered"] == 4
    assert sends[(SEND, VARIATION_B, "test", "total")]["delivered"] == 5
    automations = await stored(sync_deps, source, "automation_stats")
    assert automations[(AUTOMATION, "step-1", "total")]["opens"] == 3
    assert automations[(AUTOMATION, "all", "total")]["raw"]["stats"]["opens"] == 7


@pytest.mark.parametrize(
    ("collection", "path"),
    [
        ("singlesend_stats", "/v3/marketing/stats/singlesends"),
        ("automation_stats", "/v3/marketing/stats/automations"),
    ],
)
async def test_marketing_stats_are_paged_by_50_and_reread_every_run(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    collection: str,
    path: str,
) -> None:
    total = MARKETING_STATS_PAGE_SIZE + 1
    for n in range(total):
        item = f"{n:08d}-0000-4000-8000-000000000000"
        if collection == "singlesend_stats":
            account.add_singlesend_stat(item, delivered=n)
        else:
            account.add_automation_stat(item, opens=n)
    first = await sync(sync_service, source)
    removed = (
        account.singlesend_stats if collection == "singlesend_stats" else account.automation_stats
    ).pop()

    second = await sync(sync_service, source)

    assert result(first, collection) == ("succeeded", total, 0)
    assert result(second, collection) == ("succeeded", total - 1, 1)
    queries = account.queries_to(path)
    assert [q["page_size"] for q in queries if "page_token" not in q] == ["50", "50"]
    # A full page and the short one; then one full page, with no `next` after it.
    assert [("page_token" in q) for q in queries] == [False, True, False]
    rows = await stored(sync_deps, source, collection)
    deleted = [key for key, row in rows.items() if row["deleted_at"] is not None]
    assert deleted == [next(key for key in rows if key[0] == removed["id"])]
