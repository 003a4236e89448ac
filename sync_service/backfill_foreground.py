"""`sendgrid-source backfill SOURCE`: one backfill in the foreground, shown as it goes.

A live bar of the range read (messages created from `since` to `until`), with the messages
and events so far, then the backfill's row as a table.
"""

from __future__ import annotations

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.clock import utcnow
from shared.db import create_engine
from shared.errors import Conflict
from shared.schemas import BackfillRequest
from shared.settings import Settings
from sync_service.app import HTTP_TIMEOUT
from sync_service.backfill_ledger import BackfillRecord
from sync_service.backfill_service import BackfillService, backfill_range
from sync_service.runner import SyncDependencies

_AT = "%Y-%m-%d %H:%M:%S"
_STYLES = {"succeeded": "green", "partial": "yellow", "interrupted": "yellow", "failed": "red"}


def _counts(record: BackfillRecord) -> str:
    return (
        f"{record.messages_read:,} messages, {record.events_stored:,} stored, "
        f"{record.duplicates:,} duplicates, {record.rejected:,} rejected"
    )


def summary_table(record: BackfillRecord) -> Table:
    style = _STYLES.get(record.status, "")
    table = Table(title=f"backfill {record.id}: [{style}]{record.status}[/]", show_header=False)
    table.add_column("measure", no_wrap=True)
    table.add_column("value", overflow="fold")
    rows = [
        ("messages created", f"{record.since:{_AT}} to {record.until:{_AT}} UTC"),
        ("read up to", f"{record.reached:{_AT}} UTC ({record.progress:.0%})"),
        ("messages listed / read", f"{record.messages_listed:,} / {record.messages_read:,}"),
        ("gone before read (past 30 days)", f"{record.messages_missing:,}"),
        ("100 events, older ones may lack", f"{record.messages_truncated:,}"),
        ("events stored", f"{record.events_stored:,}"),
        ("duplicates (already stored)", f"{record.duplicates:,}"),
        ("rejected (kept with their reason)", f"{record.rejected:,}"),
    ]
    if record.shortfall:
        rows.append(("not listable", record.shortfall))
    if record.error:
        rows.append(("error", record.error))
    for name, value in rows:
        table.add_row(name, value)
    return table


async def backfill_in_foreground(
    settings: Settings, id_or_name: str, request: BackfillRequest, console: Console
) -> BackfillRecord:
    """Run one backfill now (or resume the source's interrupted one) and show it; Conflict
    while another is running."""
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            service = BackfillService(SyncDependencies(engine, http, settings))
            source = await service.deps.sources.find(id_or_name)
            since, until = backfill_range(request, utcnow())
            claim = await service.claim(source, "manual", since, until)
            if claim is None:
                raise Conflict(f"a backfill of source {source.name!r} is already running")
            if claim.resumed:
                console.print(
                    f"resuming the interrupted backfill {claim.id} at "
                    f"{claim.reached:%Y-%m-%d %H:%M:%S} UTC (its range, not the one asked for)"
                )
            span = max(1, int((claim.until - claim.since).total_seconds()))
            with Progress(
                TextColumn("backfill {task.fields[source]}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                done = int((claim.reached - claim.since).total_seconds())
                task = progress.add_task(
                    "backfill", total=span, completed=done, source=source.name, counts=""
                )

                def show(record: BackfillRecord) -> None:
                    progress.update(
                        task,
                        completed=int((record.reached - record.since).total_seconds()),
                        counts=_counts(record),
                    )

                record = await service.run(source, claim, show)
            console.print(summary_table(record))
            return record
    finally:
        await engine.dispose()
