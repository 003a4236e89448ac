"""One backfill from SendGrid's Email Logs, carried out to the end (or to where it stops).

Window by window in creation time (`email_logs.read_email_logs`), each message's events are
put in the Event Webhook's shape (`log_events.webhook_events`) and stored by the webhook's own
validation and writer (`shared.event_store`), with `origin = 'backfill'`. An event whose
`sg_event_id` is stored already, by the webhook or an earlier backfill, is counted as a
duplicate and stored nothing twice. Only once a window's events are committed does the
progress row move past it, so a backfill stopped anywhere resumes at its `reached` and reads
at most one window again (whose events then count as duplicates).

When it ends, the days a repair backfill was started for are reconciled again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy.exc import DBAPIError

from shared.clock import utcnow
from shared.completeness_table import mark_repaired
from shared.event_store import StoredCounts, store_events
from shared.source_rows import Source
from shared.tables import source_tables
from sync_service.backfill_claims import BackfillClaim
from sync_service.backfill_ledger import (
    BackfillRecord,
    BackfillStatus,
    WindowCounts,
    advance,
    beat,
    finish,
    get_backfill,
)
from sync_service.background import heartbeat
from sync_service.email_logs import MAX_LIMIT, LogsWindow, read_email_logs
from sync_service.errors import EmailLogsRefused, SendGridError
from sync_service.log_events import MappedEvent, UnmappedEvent, webhook_events
from sync_service.runner import SyncDependencies

log = logging.getLogger("sendgrid_source.backfill")

# Called after each window is stored, with the row as it now stands (the CLI's live line).
BackfillProgress = Callable[[BackfillRecord], None]


def _no_progress(record: BackfillRecord) -> None:
    return None


def window_events(window: LogsWindow) -> tuple[list[MappedEvent], list[UnmappedEvent]]:
    mapped: list[MappedEvent] = []
    unmapped: list[UnmappedEvent] = []
    for message in window.messages:
        for event in webhook_events(message.detail):
            if isinstance(event, MappedEvent):
                mapped.append(event)
            else:
                unmapped.append(event)
    return mapped, unmapped


async def _store_window(deps: SyncDependencies, source: Source, window: LogsWindow) -> StoredCounts:
    mapped, unmapped = window_events(window)
    return await store_events(
        deps.engine,
        source.schema_name,
        [event.event for event in mapped],
        rejected=[(event.kind, event.reason, event.payload) for event in unmapped],
        origin="backfill",
        received_at=utcnow(),
        clickhouse=deps.clickhouse,
    )


async def execute_backfill(
    deps: SyncDependencies,
    source: Source,
    claim: BackfillClaim,
    progress: BackfillProgress | None = None,
    *,
    listing_limit: int = MAX_LIMIT,
) -> BackfillRecord:
    """Run a claimed backfill to its end, record it, release the claim; the final row."""
    show = progress or _no_progress
    client = deps.client_for(source)
    status: BackfillStatus = "failed"
    error: str | None = None
    shortfalls: list[str] = []
    try:
        async with heartbeat(lambda: beat(deps.engine, claim.id), claim.id):
            windows = read_email_logs(client, claim.reached, claim.until, limit=listing_limit)
            async for window in windows:
                stored = await _store_window(deps, source, window)
                counts = WindowCounts(
                    messages_listed=window.listed,
                    messages_read=len(window.messages),
                    messages_missing=len(window.not_found),
                    messages_truncated=len(window.truncated),
                    events_stored=stored.stored,
                    duplicates=stored.duplicates,
                    rejected=stored.rejected,
                )
                await advance(deps.engine, claim.id, window.end, counts)
                shortfalls += [shortfall.describe() for shortfall in window.shortfalls]
                record = await get_backfill(deps.engine, claim.id)
                if record is not None:
                    show(record)
        status = "partial" if shortfalls else "succeeded"
    except EmailLogsRefused as exc:
        error = str(exc)
    except SendGridError as exc:
        # Rate limits and outages outlasting the client's retries: the row keeps its place
        # and the next backfill of the source resumes it.
        status, error = "interrupted", f"stopped by SendGrid, resumable: {exc}"
    except (OSError, DBAPIError) as exc:
        status = "interrupted"
        error = f"the warehouse could not be written ({type(exc).__name__}), resumable"
    except asyncio.CancelledError:
        status, error = "interrupted", "the sync service shut down; the next start resumes it"
        raise
    except Exception as exc:
        log.exception("backfill crashed", extra={"fields": {"id": claim.id}})
        error = f"internal error: {type(exc).__name__}: {exc}"
    finally:
        try:
            await finish(
                deps.engine,
                claim.id,
                status,
                error=error,
                shortfall="; ".join(shortfalls) or None,
            )
        finally:
            await claim.release()
    record = await get_backfill(deps.engine, claim.id)
    assert record is not None  # the row was written above
    log.info(
        "backfill finished",
        extra={"fields": {"id": claim.id, "source": source.name, "status": status}},
    )
    if record.repair_days and status in ("succeeded", "partial"):
        await reconcile_repaired(deps, source, record.repair_days)
    show(record)
    return record


async def reconcile_repaired(deps: SyncDependencies, source: Source, days: Sequence[str]) -> None:
    """Reconcile the source again, keeping each repaired day's stored counts from before the
    repair beside the new ones (the completeness table's before and after)."""
    tables = source_tables(source.schema_name)
    async with deps.engine.begin() as connection:
        await mark_repaired(connection, tables, [date.fromisoformat(day) for day in days], utcnow())
    fresh = await deps.sources.get(source.id)
    await deps.reconciliation.reconcile(fresh)
