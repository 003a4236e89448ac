"""Backfills that start on their own: the repair of a day the reconciliation found short
(found, backfilled, reconciled again complete, before and after kept), a new source's history
(`backfill_days`), and an interrupted backfill resumed. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from shared.clock import utcnow
from shared.tables import backfills as backfills_table
from shared.tables import sources
from sync_service.backfill_claims import claim_backfill
from sync_service.backfill_ledger import WindowCounts, advance, finish, list_backfills
from sync_service.backfill_schedule import start_due_backfills
from sync_service.backfill_service import BackfillService
from sync_service.runner import SyncDependencies
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.reconciliation_helpers import DAY_COUNTS, day_traffic, post_events, unique
from tests.sync.backfill.conftest import JSON, in_email_logs, source_row
from tests.webhook_helpers import new_source

# A settled day (ended more than RECONCILE_SETTLE ago) within Email Logs' 30 days.
DAY = (utcnow() - timedelta(days=4)).date()
DAY_START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)


async def _collecting_since(sync_deps: SyncDependencies, source_id: str, moment: datetime) -> None:
    async with sync_deps.engine.begin() as connection:
        await connection.execute(
            sources.update().where(sources.c.id == source_id).values(created_at=moment)
        )


def _metrics(day: JSON) -> dict[str, JSON]:
    return {metric["metric"]: metric for metric in day["metrics"]}


async def test_a_short_day_is_repaired_by_a_backfill_and_reconciled_again_complete(
    ingest: httpx.AsyncClient,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
    webhook_source: JSON,
) -> None:
    events = day_traffic(DAY_START, DAY_COUNTS, tag="r")
    deliveries = [event for event in events if event["event"] == "delivered"]
    lost = deliveries[:3]
    await post_events(ingest, webhook_source["path"], [e for e in events if e not in lost])
    in_email_logs(account, events, created_at=DAY_START + timedelta(hours=1))
    account.daily_stats[DAY.isoformat()] = DAY_COUNTS | unique(DAY_COUNTS)
    await _collecting_since(sync_deps, webhook_source["id"], DAY_START - timedelta(days=1))
    outcome = await sync_deps.reconciliation.reconcile(await source_row(sync_deps, webhook_source))
    assert outcome.days[DAY] == ("missing", "3 events missing in delivered")
    patched = await ingest.patch(
        f"/sources/{webhook_source['id']}", json={"completeness_repair": True}
    )
    assert patched.status_code == 200, patched.text

    started = await start_due_backfills(backfills)
    await backfills.wait_for_background()

    [repair] = await list_backfills(sync_deps.engine, webhook_source["id"])
    assert [repair.id] == started
    assert (repair.trigger, repair.status, repair.repair_days) == (
        "repair",
        "succeeded",
        [DAY.isoformat()],
    )
    assert repair.since <= DAY_START - timedelta(days=1)
    assert (repair.events_stored, repair.duplicates) == (len(lost), len(events) - len(lost))
    answer = await ingest.get(f"/sources/{webhook_source['id']}/completeness", params={"days": 7})
    [day] = [d for d in answer.json()["days"] if d["day"] == DAY.isoformat()]
    assert (day["status"], day["verdict"]) == ("complete", "complete")
    assert day["repaired_at"] is not None
    delivered = _metrics(day)["delivered"]
    assert (delivered["stored_before_repair"], delivered["stored_count"]) == (
        DAY_COUNTS["delivered"] - len(lost),
        DAY_COUNTS["delivered"],
    )
    assert _metrics(day)["opens"]["stored_before_repair"] == DAY_COUNTS["opens"]

    # The day is repaired: nothing more is due.
    assert await start_due_backfills(backfills) == []


async def test_a_day_still_short_after_its_repair_is_not_repaired_again(
    ingest: httpx.AsyncClient,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
    webhook_source: JSON,
) -> None:
    events = day_traffic(DAY_START, DAY_COUNTS, tag="s")
    lost = [event for event in events if event["event"] == "delivered"][:2]
    await post_events(ingest, webhook_source["path"], [e for e in events if e not in lost])
    # Email Logs no longer has the lost deliveries either.
    in_email_logs(account, [e for e in events if e not in lost], created_at=DAY_START)
    account.daily_stats[DAY.isoformat()] = DAY_COUNTS | unique(DAY_COUNTS)
    await _collecting_since(sync_deps, webhook_source["id"], DAY_START - timedelta(days=1))
    await sync_deps.reconciliation.reconcile(await source_row(sync_deps, webhook_source))
    await ingest.patch(f"/sources/{webhook_source['id']}", json={"completeness_repair": True})

    assert len(await start_due_backfills(backfills)) == 1
    await backfills.wait_for_background()

    assert await start_due_backfills(backfills) == []
    answer = await ingest.get(f"/sources/{webhook_source['id']}/completeness", params={"days": 7})
    [day] = [d for d in answer.json()["days"] if d["day"] == DAY.isoformat()]
    assert day["verdict"] == "2 events missing in delivered"
    assert _metrics(day)["delivered"]["stored_before_repair"] == DAY_COUNTS["delivered"] - 2


async def test_a_source_registered_with_history_gets_it_once(
    ingest: httpx.AsyncClient,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
) -> None:
    response = await ingest.post(
        "/sources", json={"name": "With history", "api_key": "SG." + "a" * 22 + "." + "b" * 43,
                          "backfill_days": 30},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    source_id = response.json()["id"]
    events = day_traffic(DAY_START, {"delivered": 4, "opens": 2}, tag="h")
    in_email_logs(account, events, created_at=DAY_START)

    [started] = await start_due_backfills(backfills)
    await backfills.wait_for_background()

    [initial] = await list_backfills(sync_deps.engine, source_id)
    assert (initial.id, initial.trigger, initial.status) == (started, "initial", "succeeded")
    assert initial.until - initial.since == timedelta(days=30)
    assert initial.since < DAY_START
    assert initial.events_stored == len(events)
    assert await start_due_backfills(backfills) == []


async def test_an_interrupted_backfill_is_resumed_by_the_schedule(
    ingest: httpx.AsyncClient,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
) -> None:
    created = await new_source(ingest, "Interrupted")
    events = day_traffic(DAY_START, {"delivered": 3}, tag="i")
    in_email_logs(account, events, created_at=DAY_START + timedelta(hours=2))
    since, until = DAY_START - timedelta(days=1), DAY_START + timedelta(days=1)
    claim = await claim_backfill(
        sync_deps.engine, created["id"], trigger="manual", since=since, until=until, worker="gone"
    )
    assert claim is not None
    await advance(sync_deps.engine, claim.id, DAY_START, WindowCounts())
    await finish(sync_deps.engine, claim.id, "interrupted")
    await claim.release()

    [resumed] = await start_due_backfills(backfills)
    await backfills.wait_for_background()

    assert resumed == claim.id
    [row] = await list_backfills(sync_deps.engine, created["id"])
    assert (row.status, row.events_stored, row.since, row.until) == (
        "succeeded",
        len(events),
        since,
        until,
    )
    async with sync_deps.engine.connect() as connection:
        assert await connection.scalar(sa.select(sa.func.count()).select_from(backfills_table)) == 1
