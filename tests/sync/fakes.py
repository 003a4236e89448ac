"""The sync tests' clock and API key; SendGrid itself is faked in tests/fake_sendgrid."""

from __future__ import annotations

import asyncio

from sync_service.export_files import CsvBatch, Row

API_KEY = "SG.sync-tests.0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghi"
START = 1_764_000_000.0  # an arbitrary unix time for the fake clock


class FakeTime:
    """A clock that only moves when the code under test sleeps, so tests never wait."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []
        # When set, every sleep waits for it: a test can hold a run in the middle.
        self.gate: asyncio.Event | None = None
        # Set once something is waiting at the gate.
        self.held = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.gate is not None:
            self.held.set()
            await self.gate.wait()


def rows_in(batch: CsvBatch) -> list[Row]:
    """A batch's records as dicts by column, as a reader of the export would see them."""
    return [dict(zip(batch.header, values, strict=True)) for values in batch.records]
