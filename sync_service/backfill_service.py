"""Starting backfills: in the background for the API and the scheduler, in the foreground for
the CLI; and reading them back."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.clock import utcnow
from shared.errors import BadRequest, Conflict, NotFound
from shared.schemas import BACKFILL_MAX_DAYS, BackfillRequest
from shared.source_rows import Source
from sync_service.backfill_claims import BackfillClaim, BackfillTrigger, claim_backfill
from sync_service.backfill_job import BackfillProgress, execute_backfill
from sync_service.backfill_ledger import BackfillRecord, get_backfill, list_backfills
from sync_service.background import BackgroundTasks
from sync_service.email_logs import MAX_LIMIT
from sync_service.runner import SyncDependencies
from sync_service.service import worker_name

log = logging.getLogger("sendgrid_source.backfill")


def backfill_range(request: BackfillRequest, now: datetime) -> tuple[datetime, datetime]:
    """[since, until) of message creation times; refuses a range SendGrid no longer keeps."""
    until = min(request.until or now, now)
    since = request.since or until - timedelta(days=request.days)
    oldest = now - timedelta(days=BACKFILL_MAX_DAYS)
    if since >= until:
        raise BadRequest(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    if until <= oldest:
        raise BadRequest(
            f"SendGrid keeps {BACKFILL_MAX_DAYS} days of events: nothing before "
            f"{oldest.isoformat()} can be backfilled"
        )
    # Messages older than the retention are gone: the range starts where SendGrid's does.
    # Whole seconds, the listing's resolution: the range stored is the range read.
    since = max(since, oldest).replace(microsecond=0)
    if until.microsecond:
        until = until.replace(microsecond=0) + timedelta(seconds=1)
    return since, until


class BackfillService:
    def __init__(self, deps: SyncDependencies, *, listing_limit: int = MAX_LIMIT) -> None:
        self.deps = deps
        # Messages per Email Logs listing (SendGrid's maximum; tests use fewer).
        self.listing_limit = listing_limit
        self.worker = worker_name()
        self.background = BackgroundTasks()

    async def claim(
        self,
        source: Source,
        trigger: BackfillTrigger,
        since: datetime,
        until: datetime,
        repair_days: list[str] | None = None,
    ) -> BackfillClaim | None:
        return await claim_backfill(
            self.deps.engine,
            source.id,
            trigger=trigger,
            since=since,
            until=until,
            worker=self.worker,
            repair_days=repair_days,
        )

    async def start(
        self,
        source_id: str,
        request: BackfillRequest,
        trigger: BackfillTrigger = "manual",
        repair_days: list[str] | None = None,
    ) -> BackfillClaim:
        """Claim a backfill (or resume the interrupted one) and run it in the background."""
        source = await self.deps.sources.get(source_id)
        since, until = backfill_range(request, utcnow())
        claim = await self.claim(source, trigger, since, until, repair_days)
        if claim is None:
            raise Conflict(f"a backfill of source {source.name!r} is already running")
        self.run_in_background(source, claim)
        return claim

    def run_in_background(self, source: Source, claim: BackfillClaim) -> None:
        self.background.start(self.run(source, claim))

    async def run(
        self, source: Source, claim: BackfillClaim, progress: BackfillProgress | None = None
    ) -> BackfillRecord:
        return await execute_backfill(
            self.deps, source, claim, progress, listing_limit=self.listing_limit
        )

    async def list(self, source_id: str, limit: int = 50) -> list[BackfillRecord]:
        source = await self.deps.sources.get(source_id, include_removed=True)
        return await list_backfills(self.deps.engine, source.id, limit)

    async def get(self, source_id: str, backfill_id: str) -> BackfillRecord:
        source = await self.deps.sources.get(source_id, include_removed=True)
        record = await get_backfill(self.deps.engine, backfill_id)
        if record is None or record.source_id != source.id:
            raise NotFound(f"no backfill {backfill_id!r} of source {source.name!r}")
        return record

    async def wait_for_background(self) -> None:
        await self.background.wait()

    async def cancel_background(self) -> None:
        await self.background.cancel()
