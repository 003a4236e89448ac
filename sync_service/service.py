"""Starting sync runs: in the background for the API, in the foreground for the scheduler/CLI."""

from __future__ import annotations

import logging
import os
import socket

from shared.errors import Conflict
from sync_service.background import BackgroundTasks
from sync_service.ledger import RunRecord, Trigger, last_run_started, list_runs
from sync_service.run_claims import claim_run
from sync_service.runner import Progress, RunOutcome, SyncDependencies, execute_run

log = logging.getLogger("sendgrid_source.sync")


def worker_name() -> str:
    """Which process ran a run, for the ledger (host:pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SyncService:
    def __init__(self, deps: SyncDependencies) -> None:
        self.deps = deps
        self.worker = worker_name()
        self.background = BackgroundTasks()

    async def run(
        self, source_id: str, trigger: Trigger, progress: Progress | None = None
    ) -> RunOutcome | None:
        """Sync now and wait; None when a run of this source is already going on anywhere."""
        source = await self.deps.sources.get(source_id)
        claim = await claim_run(self.deps.engine, source.id, trigger, worker=self.worker)
        if claim is None:
            log.info("sync skipped: already running", extra={"fields": {"source": source.name}})
            return None
        return await execute_run(self.deps, source, claim, progress)

    async def start(self, source_id: str, trigger: Trigger) -> str:
        """Claim a run and carry it out in the background; returns the run id at once."""
        source = await self.deps.sources.get(source_id)
        claim = await claim_run(self.deps.engine, source.id, trigger, worker=self.worker)
        if claim is None:
            raise Conflict(f"a sync of source {source.name!r} is already running")
        self.background.start(execute_run(self.deps, source, claim))
        return claim.run_id

    async def runs(self, source_id: str, limit: int = 50) -> list[RunRecord]:
        source = await self.deps.sources.get(source_id, include_removed=True)
        return await list_runs(self.deps.engine, source.id, limit)

    async def has_run(self, source_id: str) -> bool:
        return await last_run_started(self.deps.engine, source_id) is not None

    async def wait_for_background(self) -> None:
        """Let background runs finish (tests, graceful shutdown)."""
        await self.background.wait()

    async def cancel_background(self) -> None:
        await self.background.cancel()
