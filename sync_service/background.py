"""What the sync service runs beside the request that started it: runs and backfills handed
off in the background, and the heartbeat a long job writes while it works."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("sendgrid_source.sync")

# Heartbeats are written every HEARTBEAT_SECONDS (see run_claims.STALE_AFTER).
HEARTBEAT_SECONDS = 30.0


class BackgroundTasks:
    """Tasks kept referenced until they end, so they can be awaited or cancelled together."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, job: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Let them finish (tests, graceful shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.wait()


@contextlib.asynccontextmanager
async def heartbeat(beat: Callable[[], Awaitable[None]], what: str) -> AsyncIterator[None]:
    """Call `beat` every HEARTBEAT_SECONDS while the block runs. A missed heartbeat is
    logged, and never kills the job it reports on."""

    async def keep_beating() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await beat()
            except Exception:
                log.warning("heartbeat failed", extra={"fields": {"job": what}}, exc_info=True)

    task = asyncio.create_task(keep_beating())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
