"""Scenario 1: the warehouse unreachable for several seconds while 8 senders POST signed batches.

Run twice: PostgreSQL cut while it holds the event tables, and ClickHouse cut while it does
(WAREHOUSE_URL; PostgreSQL stays up).

Promise: every answer while the warehouse is cut is 503 with Retry-After and a message saying
what could not be written, and once the senders have resent everything that did not get a 2xx
(as SendGrid does), every event is stored exactly once (on ClickHouse: as users read it, with
FINAL, and with no second row to merge away).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.faults.conftest import (
    Answer,
    Batch,
    SenderLog,
    WarehouseOutage,
    events_by_id,
    events_sent,
    expected_per_table,
    make_traffic,
    send_like_sendgrid,
    stored_events,
    unique_ids,
    unique_source_name,
)
from tests.webhook_helpers import Signer, new_source

pytestmark = [pytest.mark.usefixtures("sendgrid"), pytest.mark.slow]

SENDERS = 8
BATCHES_PER_SENDER = 10
BATCH_SIZE = 300
# The database is cut once this share of the batches has been accepted, for this long.
CUT_AFTER_SHARE = 0.3
OUTAGE_SECONDS = 4.0


# What a refused request's message says could not be written, by warehouse: on PostgreSQL also
# the source's look-up when its cached entry expired during the cut.
NOT_STORED = {
    "sql": ("the events were not stored: the database", "the database is unavailable"),
    "clickhouse": ("the events were not stored: the ClickHouse warehouse did not take them",),
}


async def test_eight_senders_through_an_outage_store_every_event_exactly_once(
    warehouse_outage: WarehouseOutage, warehouse: str
) -> None:
    proxied_app, proxy, settings = (
        warehouse_outage.app,
        warehouse_outage.proxy,
        warehouse_outage.settings,
    )
    signer = Signer()
    traffic = make_traffic(
        signer,
        senders=SENDERS,
        batches=BATCHES_PER_SENDER,
        size=BATCH_SIZE,
        duplicate_every=10,
        tag="outage",
    )
    total_batches = SENDERS * BATCHES_PER_SENDER
    log = SenderLog()
    accepted = 0
    cut_now = asyncio.Event()
    phase = "before"

    def on_accepted(batch: Batch) -> None:
        nonlocal accepted
        accepted += 1
        if accepted >= CUT_AFTER_SHARE * total_batches:
            cut_now.set()

    async def outage() -> dict[str, Any]:
        nonlocal phase
        await cut_now.wait()
        in_flight_accepted = accepted
        proxy.cut()
        cut_at = time.monotonic()
        phase = "cut"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=proxied_app), base_url="http://ingest.test"
        ) as probe:
            ready_during = (await probe.get("/readyz")).status_code
        await asyncio.sleep(OUTAGE_SECONDS)
        proxy.restore()
        phase = "after"
        return {
            "accepted_before_cut": in_flight_accepted,
            "readyz_during": ready_during,
            "outage_seconds": time.monotonic() - cut_at,  # reported, never asserted
        }

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=proxied_app),
        base_url="http://ingest.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=60,
    ) as client:
        source = await new_source(client, unique_source_name("Outage"), signer)
        async with asyncio.timeout(150):
            outage_task = asyncio.create_task(outage())
            try:
                await asyncio.gather(
                    *(
                        send_like_sendgrid(
                            client, source["path"], own, log, lambda: phase, on_accepted=on_accepted
                        )
                        for own in traffic
                    )
                )
                figures = await outage_task
            finally:
                outage_task.cancel()
        assert (await client.get("/readyz")).status_code == 200

    # Every answer to a request sent and answered while the database was cut: 503 + Retry-After.
    def during_cut(answer: Answer) -> bool:
        return answer.phase_sent == "cut" and answer.phase_answered == "cut"

    answered_during_cut = [a for a in log.answers if during_cut(a)]
    assert answered_during_cut, "no request was answered during the outage"
    assert {(a.status, a.retry_after) for a in answered_during_cut} == {(503, "30")}, [
        (a.status, a.error) for a in answered_during_cut if a.status != 503
    ][:5]
    # And nothing but 2xx or 503 + Retry-After at any time: no 500, no dropped connection.
    refused = [a for a in log.answers if a.status is None or not 200 <= a.status < 300]
    assert {(a.status, a.retry_after) for a in refused} == {(503, "30")}, [
        (a.status, a.error) for a in refused if a.status != 503
    ][:5]
    assert figures["readyz_during"] == 503
    # Each refusal says what was not written, and that resending is the way out.
    messages = {a.error for a in refused}
    assert all(
        message
        and any(said in message for said in NOT_STORED[warehouse])
        and "retry later" in message
        for message in messages
    ), sorted(str(m) for m in messages)[:3]

    # Every batch got its 2xx in the end, and every event is stored exactly once.
    assert all(batch.accepted for own in traffic for batch in own)
    sent = unique_ids(traffic)
    held = await stored_events(settings, source["schema"])
    stored = held.activity_ids
    assert len(stored) == len(set(stored)) == len(sent)
    assert set(stored) == sent
    assert held.per_table == expected_per_table(events_by_id(traffic))
    assert held.raw_rows == len(sent)  # ClickHouse: no copy even waiting to be merged
    answers = [batch.answer for own in traffic for batch in own if batch.answer is not None]
    assert sum(answer["rejected"] for answer in answers) == 0
    # What each 2xx reported adds up: stored once, or absorbed as a duplicate.
    assert sum(answer["stored"] + answer["duplicates"] for answer in answers) == events_sent(
        traffic
    )

    print(
        f"\noutage of the {warehouse} warehouse: {events_sent(traffic)} events sent "
        f"({len(sent)} unique) in "
        f"{total_batches} batches by {SENDERS} senders; "
        f"warehouse cut for {figures['outage_seconds']:.1f} s "
        f"after {figures['accepted_before_cut']} batches were accepted; "
        f"{len(answered_during_cut)} answers during the cut, all 503 + Retry-After: 30; "
        f"{log.count(lambda a: a.status == 503)} 503s in all ({sorted(map(str, messages))[0]}); "
        f"{log.resends()} resends; "
        f"{len(stored)} events stored ({held.raw_rows} rows before any merge); reported stored "
        f"{sum(a['stored'] for a in answers)} + duplicates {sum(a['duplicates'] for a in answers)}"
    )
