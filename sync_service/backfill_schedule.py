"""Which backfills start on their own, looked for on every pass of the scheduler:

- an interrupted backfill is resumed (its process stopped, or SendGrid stopped it);
- a source registered with `backfill_days` gets its history once, beside its initial sync;
- a source with `completeness_repair` gets a backfill of the days the reconciliation found
  incomplete within Email Logs' 30 days, each day repaired once: a day still short after its
  repair stays as the table shows it (SendGrid had nothing more to give).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from shared.clock import utcnow
from shared.completeness_metrics import ALARMED
from shared.schemas import BACKFILL_MAX_DAYS
from shared.source_rows import Source
from shared.stats_days import day_range
from shared.tables import backfills, source_tables
from sync_service.backfill_claims import BackfillTrigger, interrupt_dead_backfills
from sync_service.backfill_ledger import repaired_days
from sync_service.backfill_service import BackfillService

log = logging.getLogger("sendgrid_source.backfill")

# Events of a day belong to messages created that day or shortly before (an open or click
# comes after its delivery): a repair reads messages created from a day before the day.
REPAIR_LOOKBACK = timedelta(days=1)


async def start_due_backfills(service: BackfillService) -> list[str]:
    """Start every backfill due now, in the background; returns their ids."""
    engine = service.deps.engine
    resumable = set(await interrupt_dead_backfills(engine))
    started = []
    now = utcnow()
    for source in await service.deps.sources.list_sources():
        due = await _due(service, source, resumable, now)
        if due is None:
            continue
        trigger, since, until, days = due
        claim = await service.claim(source, trigger, since, until, days)
        if claim is None:
            continue  # one is running, here or on a replica
        log.info(
            "backfill started",
            extra={
                "fields": {"source": source.name, "trigger": claim.trigger, "id": claim.id}
                | ({"resumed_at": claim.reached} if claim.resumed else {})
            },
        )
        service.run_in_background(source, claim)
        started.append(claim.id)
    return started


async def _due(
    service: BackfillService, source: Source, resumable: set[str], now: datetime
) -> tuple[BackfillTrigger, datetime, datetime, list[str] | None] | None:
    oldest = now - timedelta(days=BACKFILL_MAX_DAYS)
    if source.id in resumable:
        # The claim takes over the interrupted row, whatever range is named here.
        return "manual", now, now, None
    if source.backfill_days and not await _has_backfill(service, source):
        return "initial", max(oldest, now - timedelta(days=source.backfill_days)), now, None
    if source.completeness_repair:
        days = await incomplete_days(service, source, now)
        if days:
            zone = ZoneInfo(source.stats_timezone)
            ranges = [day_range(day, zone) for day in days]
            since = max(oldest, min(r.start for r in ranges) - REPAIR_LOOKBACK)
            until = min(now, max(r.end for r in ranges))
            if since < until:
                return "repair", since, until, [day.isoformat() for day in days]
    return None


async def _has_backfill(service: BackfillService, source: Source) -> bool:
    async with service.deps.engine.connect() as connection:
        found = await connection.scalar(
            sa.select(sa.func.count())
            .select_from(backfills)
            .where(backfills.c.source_id == source.id)
        )
    return bool(found)


async def incomplete_days(service: BackfillService, source: Source, now: datetime) -> list[date]:
    """Days found missing events in an alarmed metric, within Email Logs' retention, not
    repaired yet."""
    table = source_tables(source.schema_name).completeness
    first = (now - timedelta(days=BACKFILL_MAX_DAYS)).date()
    async with service.deps.engine.connect() as connection:
        found = await connection.scalars(
            sa.select(table.c.day)
            .where(
                table.c.metric.in_(ALARMED),
                table.c.missing > 0,
                table.c.repaired_at.is_(None),
                table.c.day >= first,
            )
            .distinct()
            .order_by(table.c.day)
        )
        days = list(found)
    done = await repaired_days(service.deps.engine, source.id)
    return [day for day in days if day.isoformat() not in done]
