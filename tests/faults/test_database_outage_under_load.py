"""Scenario 1: PostgreSQL unreachable for several seconds while 8 senders POST signed batches.

Promise: every answer while the database is cut is 503 with Retry-After, and once the senders
have resent everything that did not get a 2xx (as SendGrid does), every event is stored
exactly once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.faults.conftest import (
    Answer,
    Batch,
    SenderLog,
    events_sent,
    make_traffic,
    send_like_sendgrid,
    stored_event_ids,
    unique_ids,
)
from tests.tcp_proxy import OutageProxy
from tests.webhook_helpers import Signer, new_source

pytestmark = [pytest.mark.usefixtures("sendgrid"), pytest.mark.slow]

SENDERS = 8
BATCHES_PER_SENDER = 10
BATCH_SIZE = 300
# The database is cut once this share of the batches has been accepted, for this long.
CUT_AFTER_SHARE = 0.3
OUTAGE_SECONDS = 4.0


async def test_eight_senders_through_an_outage_store_every_event_exactly_once(
    proxied_app: FastAPI, proxy: OutageProxy, settings: Settings
) -> None:
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
        source = await new_source(client, "Outage", signer)
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

    # Every batch got its 2xx in the end, and every event is stored exactly once.
    assert all(batch.accepted for own in traffic for batch in own)
    sent = unique_ids(traffic)
    stored = await stored_event_ids(settings.DATABASE_URL, source["schema"])
    assert len(stored) == len(set(stored)) == len(sent)
    assert set(stored) == sent
    answers = [batch.answer for own in traffic for batch in own if batch.answer is not None]
    assert sum(answer["rejected"] for answer in answers) == 0
    # What each 2xx reported adds up: stored once, or absorbed as a duplicate.
    assert sum(answer["stored"] + answer["duplicates"] for answer in answers) == events_sent(
        traffic
    )

    print(
        f"\noutage: {events_sent(traffic)} events sent ({len(sent)} unique) in "
        f"{total_batches} batches by {SENDERS} senders; "
        f"database cut for {figures['outage_seconds']:.1f} s "
        f"after {figures['accepted_before_cut']} batches were accepted; "
        f"{len(answered_during_cut)} answers during the cut, all 503 + Retry-After: 30; "
        f"{log.count(lambda a: a.status == 503)} 503s in all; {log.resends()} resends; "
        f"{len(stored)} rows stored; reported stored "
        f"{sum(a['stored'] for a in answers)} + duplicates {sum(a['duplicates'] for a in answers)}"
    )
