"""Parser processes: webhook bodies are parsed and validated beside the service, not in it.

Parsing a batch is mostly Python work, and in the service's process it holds the interpreter
lock that the event loop needs for HTTP and for encoding the writers' COPY data. In a parser
process it runs on another core. The batch comes back as MessagePack made by msgspec, not
pickled: pickling a batch cost the parser process about as much as a third of its parse
(16k instructions an event against 2.8k), and loading it costs the service slightly more
(10.6k against 9.4k; callgrind).

`INGEST_PARSERS=0` parses in a worker thread of the service instead (one core, or tests).
A parser process that dies (killed, out of memory) fails only the requests it held: they are
answered 503, so SendGrid resends them, and the next request starts a fresh pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime

from shared.errors import ServiceUnavailable
from shared.event_parsing import ParsedBatch, parse_body, parse_packed, unpack_batch
from shared.gc_tuning import tune_garbage_collection

log = logging.getLogger("sendgrid_source.ingest")

# Seconds SendGrid is asked to wait before resending after a parser process died.
_RETRY_AFTER_SECONDS = 5


def _start_parser_process(service_pid: int) -> None:
    tune_garbage_collection()
    # A service killed outright (SIGKILL, the OOM killer) cannot stop its parser processes,
    # and a parser waiting for work would never notice: each one leaves once its parent is
    # gone, rather than living on as an orphan.
    threading.Thread(target=_exit_without_parent, args=(service_pid,), daemon=True).start()


def _exit_without_parent(service_pid: int) -> None:
    while os.getppid() == service_pid:
        time.sleep(1)
    os._exit(0)


class ParserPool:
    """`processes` parser processes, or parsing in a thread when it is 0."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None

    async def start(self) -> None:
        if self.processes:
            self._executor = self._new_executor()
            await self._warm_up(self._executor)

    async def stop(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def parse(self, body: bytes, received_at: datetime, max_events: int) -> ParsedBatch:
        """`parse_body` in a parser process; its errors (BadRequest, PayloadTooLarge) come
        back as themselves."""
        if not self.processes:
            # In a worker thread: a body of a million tiny events must not stall the loop.
            return await asyncio.to_thread(parse_body, body, received_at, max_events)
        executor = self._executor
        if executor is None:  # the last pool broke: start another
            executor = self._executor = self._new_executor()
        loop = asyncio.get_running_loop()
        try:
            packed = await loop.run_in_executor(
                executor, parse_packed, body, received_at, max_events
            )
        except BrokenProcessPool:
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
                log.warning("a parser process died; starting a new pool")
            raise ServiceUnavailable(
                "the events were not stored: a parser process stopped while reading them; "
                "retry later",
                retry_after=_RETRY_AFTER_SECONDS,
            ) from None
        return unpack_batch(packed)

    def _new_executor(self) -> ProcessPoolExecutor:
        # `spawn`, not `fork`: the service has threads and open connections a fork would copy.
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_parser_process,
            initargs=(os.getpid(),),
        )

    async def _warm_up(self, executor: ProcessPoolExecutor) -> None:
        """Start every process and import the models now, not on the first webhooks."""
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        await asyncio.gather(
            *(
                loop.run_in_executor(executor, parse_packed, b"[]", now, 1)
                for _ in range(self.processes)
            )
        )
