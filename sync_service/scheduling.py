"""The schedule follows the `sources` table: one interval job per source, re-read regularly.

A new source is picked up at the next reconcile (every RECONCILE_SECONDS) and, having no runs
yet, gets its initial sync at once. A removed source loses its job. Each job is one run at a
time (`max_instances=1`) with missed runs collapsed into one (`coalesce`); across replicas the
database claim in `run_claims` keeps runs of one source apart.

Every sync run ends with the reconciliation against SendGrid's daily statistics; one more job
(`completeness`, hourly) reconciles each source whose last reconciliation is a day old, so a
source whose syncs are rarer than daily, or keep failing, is still reconciled every day.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from shared import completeness_gauge, webhook_gauge
from shared.clock import utcnow
from sync_service.ledger import Trigger, last_run_started
from sync_service.run_claims import fail_dead_runs
from sync_service.service import SyncService

log = logging.getLogger("sendgrid_source.sync")

RECONCILE_SECONDS = 20
JOB_PREFIX = "sync:"
# How often the completeness job looks for sources due, and how old a reconciliation is due.
COMPLETENESS_JOB_SECONDS = 3600
COMPLETENESS_EVERY = timedelta(days=1)


def job_id(source_id: str) -> str:
    return JOB_PREFIX + source_id


class SyncScheduler:
    def __init__(self, service: SyncService, scheduler: Any | None = None) -> None:
        self.service = service
        self.scheduler: Any = scheduler or AsyncIOScheduler(timezone="UTC")
        self._intervals: dict[str, int] = {}

    def start(self) -> None:
        self.scheduler.add_job(
            self.reconcile,
            "interval",
            seconds=RECONCILE_SECONDS,
            id="reconcile",
            next_run_time=utcnow(),
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            self.check_completeness,
            "interval",
            seconds=COMPLETENESS_JOB_SECONDS,
            id="completeness",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def next_run_time(self, source_id: str) -> datetime | None:
        job = self.scheduler.get_job(job_id(source_id))
        moment: datetime | None = job.next_run_time if job is not None else None
        return moment

    async def reconcile(self) -> None:
        """Add, reschedule and remove jobs so they match the active sources."""
        deps = self.service.deps
        # Runs left `running` by a process that died: shown failed, and not counted below.
        await fail_dead_runs(self.service.deps.engine)
        sources = {source.id: source for source in await deps.sources.list_sources()}
        # The gauges, from their tables: they also show checks the ingest service ran.
        try:
            await webhook_gauge.refresh(deps.engine)
        except Exception:
            log.exception("the webhook findings gauge was not refreshed")
        try:
            await completeness_gauge.refresh(deps.engine)
        except Exception:
            log.exception("the completeness gauge was not refreshed")
        for source_id in list(self._intervals):
            if source_id not in sources:
                self.scheduler.remove_job(job_id(source_id))
                del self._intervals[source_id]
                log.info("source removed: schedule dropped", extra={"fields": {"id": source_id}})
        for source in sources.values():
            interval = source.sync_interval(deps.settings.SYNC_INTERVAL)
            known = self._intervals.get(source.id)
            if known == interval:
                continue
            self._intervals[source.id] = interval
            if known is not None:
                self.scheduler.reschedule_job(
                    job_id(source.id), trigger="interval", seconds=interval
                )
                continue
            last = await last_run_started(
                self.service.deps.engine, source.id, include_interrupted=False
            )
            # Never synced: now (the initial sync). Otherwise one interval after the last run,
            # so a restart neither repeats a fresh sync nor postpones an overdue one.
            first = utcnow() if last is None else max(utcnow(), last + timedelta(seconds=interval))
            self.scheduler.add_job(
                self.run_job,
                "interval",
                seconds=interval,
                args=[source.id],
                id=job_id(source.id),
                next_run_time=first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,  # a late run is still wanted; coalesce keeps it to one
            )
            log.info("source scheduled", extra={"fields": {"id": source.id, "first": first}})

    async def run_job(self, source_id: str) -> None:
        trigger: Trigger = "scheduled" if await self.service.has_run(source_id) else "initial"
        try:
            await self.service.run(source_id, trigger)
        except Exception:
            # The scheduler would only log it; this says which source.
            log.exception("scheduled sync failed", extra={"fields": {"source_id": source_id}})

    async def check_completeness(self) -> None:
        """Reconcile each source last reconciled COMPLETENESS_EVERY ago or more (or never)."""
        deps = self.service.deps
        due = deps.reconciliation.now() - COMPLETENESS_EVERY
        for source in await deps.sources.list_sources():
            checked = source.completeness_checked_at
            if checked is not None and checked > due:
                continue
            try:
                await deps.reconciliation.reconcile(source)
            except Exception:
                log.exception(
                    "scheduled completeness check failed",
                    extra={"fields": {"source_id": source.id}},
                )
