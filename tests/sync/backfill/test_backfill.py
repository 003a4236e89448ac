"""Backfills from Email Logs into the webhook's tables, on SQLite and PostgreSQL: overlap with
the webhook (and with another backfill) stores nothing twice, in either order; each event type
lands as the webhook stores it; 403 stops with what the account lacks; 429s past the retries
leave it resumable; one killed midway resumes and ends with exactly the right rows."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from shared.events import EVENT_TABLES
from shared.tables import source_tables
from sync_service.backfill_ledger import BackfillRecord, get_backfill
from sync_service.backfill_service import BackfillService
from sync_service.runner import SyncDependencies
from tests.email_logs_samples import samples_in_email_logs
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.reconciliation_helpers import DAY_COUNTS, day_traffic, post_events
from tests.sync.backfill.conftest import JSON, backfill, in_email_logs, recent, source_row
from tests.webhook_helpers import new_source

SINCE_HOURS, UNTIL_HOURS = 72, 1


async def origins(app: FastAPI, schema: str) -> dict[str, int]:
    """Stored events by origin, over every event table."""
    tables = source_tables(schema)
    counted: dict[str, int] = {}
    async with app.state.engine.connect() as connection:
        for table in tables.events.values():
            result = await connection.execute(
                sa.select(table.c.origin, sa.func.count()).group_by(table.c.origin)
            )
            for origin, n in result:
                counted[origin] = counted.get(origin, 0) + n
    return counted


def traffic() -> list[JSON]:
    return day_traffic(recent(48), DAY_COUNTS, tag="bf", span=timedelta(hours=20))


async def test_a_backfill_overlapping_the_webhook_stores_nothing_twice(
    ingest: httpx.AsyncClient,
    ingest_app: FastAPI,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
    webhook_source: JSON,
) -> None:
    events = traffic()
    received, missed = events[::2], events[1::2]
    await post_events(ingest, webhook_source["path"], received)
    in_email_logs(account, events, created_at=recent(50))
    source = await source_row(sync_deps, webhook_source)

    first = await backfill(backfills, source, recent(SINCE_HOURS), recent(UNTIL_HOURS))

    assert (first.status, first.error) == ("succeeded", None)
    assert (first.messages_listed, first.messages_read) == (len(events), len(events))
    assert (first.events_stored, first.duplicates, first.rejected) == (
        len(missed),
        len(received),
        0,
    )
    schema = webhook_source["schema"]
    assert await origins(ingest_app, schema) == {"webhook": len(received), "backfill": len(missed)}

    # Another backfill of the same days: everything is there already.
    second = await backfill(backfills, source, recent(SINCE_HOURS), recent(UNTIL_HOURS))
    assert (second.events_stored, second.duplicates) == (0, len(events))

    # SendGrid resending the webhook's events after the backfill stored them: no doubles.
    response = await ingest.post(
        webhook_source["path"], content=httpx.Request("POST", "/", json=events).content
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 0, "duplicates": len(events), "rejected": 0}
    assert await origins(ingest_app, schema) == {"webhook": len(received), "backfill": len(missed)}


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    # Where and when a row was written, and the JSON text it came as, differ by origin. The
    # reference's samples reuse an `sg_event_id` for two events (a bounce and a block): the
    # one written second is kept under the id plus a content hash, so `id` depends on order.
    return {k: v for k, v in row.items() if k not in ("origin", "received_at", "raw", "id")}


async def _table_rows(app: FastAPI, schema: str) -> dict[str, list[dict[str, Any]]]:
    tables = source_tables(schema)
    found = {}
    async with app.state.engine.connect() as connection:
        for name, table in tables.events.items():
            result = await connection.execute(sa.select(table))
            rows = [_comparable(dict(row._mapping)) for row in result]
            found[name] = sorted(rows, key=lambda row: sorted(map(str, row.items())))
    return found


async def test_each_event_type_lands_as_the_webhook_stores_it(
    ingest: httpx.AsyncClient,
    ingest_app: FastAPI,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
    webhook_source: JSON,
) -> None:
    samples = samples_in_email_logs()
    by_webhook = await new_source(ingest, "By webhook")
    await post_events(ingest, by_webhook["path"], samples)
    for n, sample in enumerate(samples):
        # One message each (samples share message ids), each event keeping its own.
        account.email_logs.add(f"sample-{n}", [sample], created_at=recent(30))

    record = await backfill(
        backfills,
        await source_row(sync_deps, webhook_source),
        recent(SINCE_HOURS),
        recent(UNTIL_HOURS),
    )

    assert (record.status, record.events_stored, record.rejected) == (
        "succeeded",
        len(samples),
        0,
    )
    backfilled = await _table_rows(ingest_app, webhook_source["schema"])
    webhooked = await _table_rows(ingest_app, by_webhook["schema"])
    assert set(backfilled) == set(EVENT_TABLES)
    for table in EVENT_TABLES:
        for got, expected in zip(backfilled[table], webhooked[table], strict=True):
            differing = {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
            assert differing == {}, (table, got["sg_event_id"])
    assert sum(len(rows) for rows in backfilled.values()) == len(samples)


async def test_email_logs_refused_stops_with_what_the_account_lacks(
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
    webhook_source: JSON,
) -> None:
    account.email_logs.forbidden = True

    record = await backfill(
        backfills,
        await source_row(sync_deps, webhook_source),
        recent(SINCE_HOURS),
        recent(UNTIL_HOURS),
    )

    assert record.status == "failed"
    assert record.error is not None
    assert "403" in record.error
    assert "Email Logs" in record.error
    assert record.events_stored == 0


async def test_rate_limits_past_the_retries_leave_it_resumable(
    ingest_app: FastAPI,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
    webhook_source: JSON,
) -> None:
    events = traffic()
    in_email_logs(account, events, created_at=recent(50))
    source = await source_row(sync_deps, webhook_source)
    account.email_logs.throttled = 100

    stopped = await backfill(backfills, source, recent(SINCE_HOURS), recent(UNTIL_HOURS))

    assert stopped.status == "interrupted"
    assert stopped.error is not None
    assert "429" in stopped.error
    assert "resumable" in stopped.error

    account.email_logs.throttled = 1  # one more 429, waited out, then answers
    claim = await backfills.claim(source, "manual", recent(1), recent(0))
    assert claim is not None
    assert (claim.resumed, claim.id) == (True, stopped.id)
    done = await backfills.run(source, claim)

    assert (done.status, done.events_stored, done.duplicates) == ("succeeded", len(events), 0)
    assert await origins(ingest_app, webhook_source["schema"]) == {"backfill": len(events)}


async def test_a_backfill_killed_midway_resumes_and_ends_with_exactly_the_right_rows(
    ingest_app: FastAPI,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    webhook_source: JSON,
) -> None:
    since, until = recent(SINCE_HOURS), recent(UNTIL_HOURS)
    ids = account.email_logs.generate(60, start=since, seconds=int((until - since).total_seconds()))
    # Listings of at most 10 messages: the range is read in several windows.
    backfills = BackfillService(sync_deps, listing_limit=10)
    source = await source_row(sync_deps, webhook_source)
    claim = await backfills.claim(source, "manual", since, until)
    assert claim is not None
    windows: list[BackfillRecord] = []

    def kill_after_two(record: BackfillRecord) -> None:
        windows.append(record)
        if len(windows) == 2:
            task.cancel()

    task = asyncio.create_task(backfills.run(source, claim, kill_after_two))
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped = await get_backfill(sync_deps.engine, claim.id)
    assert stopped is not None
    assert stopped.status == "interrupted"
    assert since < stopped.reached < until
    stored_before = stopped.events_stored
    assert stored_before > 0

    resumed = await backfills.claim(source, "manual", since, until)
    assert resumed is not None
    assert (resumed.id, resumed.reached) == (claim.id, stopped.reached)
    done = await backfills.run(source, resumed)

    assert done.status == "succeeded"
    expected = sum(len(account.email_logs.messages[i].detail["events"]) for i in ids)
    # Exactly the right rows, each counted once as stored: the window being read when it was
    # killed had not been written, and is read whole on resuming.
    assert await origins(ingest_app, webhook_source["schema"]) == {"backfill": expected}
    assert (done.events_stored, done.duplicates) == (expected, 0)
    assert done.messages_read == len(ids)


async def test_backfilled_events_are_history_not_what_the_webhook_received_lately(
    ingest: httpx.AsyncClient,
    account: FakeAccount,
    sync_deps: SyncDependencies,
    backfills: BackfillService,
    webhook_source: JSON,
) -> None:
    events = traffic()
    await post_events(ingest, webhook_source["path"], events[:3])
    in_email_logs(account, events, created_at=recent(50))

    await backfill(
        backfills, await source_row(sync_deps, webhook_source), recent(SINCE_HOURS), recent(0)
    )

    source_id = webhook_source["id"]
    summary = (await ingest.get(f"/sources/{source_id}")).json()["webhook"]
    assert sum(summary["events_last_24h"].values()) == 3
    assert summary["events_stored"] == 3
    hourly = (await ingest.get(f"/sources/{source_id}/events/hourly?hours=2")).json()
    assert sum(sum(series["counts"]) for series in hourly["series"]) == 3
