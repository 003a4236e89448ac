"""Did SendGrid's test batch reach the receiver? Noticing it there, and waiting for it here.

SendGrid's test endpoint POSTs its documented sample events: recipient `example@test.com`,
all with one fixed `sg_message_id`. The receiver looks for that id in the raw body once the
request is authenticated (token, and signature when the source has a key): a bytes search of
small bodies only (the test batch is a few KB), before any parsing. "Stored" is not the
signal, since a second test batch is all duplicates; "received and authenticated" is.

An arrival is noted twice: in memory (`TestArrivals`), so the configure flow running in the
same ingest service wakes at once, and in the `sources` row (`webhook_test_status` =
`arrived`), so a flow running elsewhere (the CLI, another replica) sees it by polling.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.tables import sources

TEST_EMAIL: Final = "example@test.com"
# The sg_message_id of every event in SendGrid's test batch (its documented sample events).
TEST_MESSAGE_ID: Final = b"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"

ARRIVED: Final = "arrived"
NOT_ARRIVED: Final = "not_arrived"
FAILED: Final = "failed"

# How often a flow without the receiver in its process reads the row.
_POLL_SECONDS = 0.5


# SendGrid's test batch is a handful of events, a few KB. Only bodies this small are searched,
# so real traffic's large batches pay nothing for the check (a search costs about 0.5 ms a MB).
_TEST_BATCH_MAX_BYTES: Final = 64 * 1024


def is_test_batch(body: bytes) -> bool:
    """Whether a (decompressed) body holds SendGrid's test events."""
    return len(body) <= _TEST_BATCH_MAX_BYTES and TEST_MESSAGE_ID in body


class TestArrivals:
    """Per source, in this process: when a test batch last arrived, and who waits for one."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self._waiters: dict[str, asyncio.Event] = {}
        self.last: dict[str, float] = {}

    def expect(self, source_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[source_id] = event
        return event

    def forget(self, source_id: str) -> None:
        self._waiters.pop(source_id, None)

    def note(self, source_id: str) -> None:
        self.last[source_id] = time.monotonic()
        waiter = self._waiters.get(source_id)
        if waiter is not None:
            waiter.set()


async def record_arrival(engine: AsyncEngine, source_id: str) -> None:
    """Persist an arrival on the source's row (the receiver's side)."""
    async with engine.begin() as connection:
        await connection.execute(
            sources.update()
            .where(sources.c.id == source_id)
            .values(webhook_test_status=ARRIVED, webhook_tested_at=utcnow())
        )


async def arrived_since(engine: AsyncEngine, source_id: str, since: datetime) -> bool:
    query = sa.select(sources.c.webhook_test_status, sources.c.webhook_tested_at).where(
        sources.c.id == source_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    return bool(
        row is not None
        and row.webhook_test_status == ARRIVED
        and row.webhook_tested_at is not None
        and row.webhook_tested_at >= since
    )


async def wait_for_arrival(
    engine: AsyncEngine,
    source_id: str,
    since: datetime,
    within: float,
    waiter: asyncio.Event | None,
) -> bool:
    """True once a test batch for the source has arrived after `since`, within `within`
    seconds: woken by `waiter` in the receiver's process, else by reading the row."""
    deadline = time.monotonic() + within
    while True:
        if await arrived_since(engine, source_id, since):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        pause = min(remaining, _POLL_SECONDS)
        if waiter is None:
            await asyncio.sleep(pause)
            continue
        try:
            await asyncio.wait_for(waiter.wait(), pause)
        except TimeoutError:
            continue
        return True
