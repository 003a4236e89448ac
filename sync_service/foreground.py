"""`sendgrid-source sync-now SOURCE`: one sync in the foreground, shown as it goes.

A live line per collection while it is read, then the ledger's summary as a table.
"""

from __future__ import annotations

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.db import create_engine
from shared.errors import Conflict
from shared.settings import Settings
from sync_service.app import HTTP_TIMEOUT
from sync_service.runner import RunOutcome, SyncDependencies
from sync_service.service import SyncService

_STATUS_STYLES = {
    "succeeded": "green",
    "empty": "yellow",
    "partial": "yellow",
    "forbidden": "red",
    "failed": "red",
    "skipped": "dim",
}


def summary_table(outcome: RunOutcome) -> Table:
    """The run as the ledger records it: one row per collection."""
    style = _STATUS_STYLES.get(outcome.status, "")
    table = Table(title=f"sync {outcome.run_id}: [{style}]{outcome.status}[/]")
    for column in ("collection", "API", "status", "upserted", "deleted"):
        table.add_column(column, justify="right" if column in ("upserted", "deleted") else "left")
    table.add_column("details", overflow="fold")
    for result in outcome.collections:
        table.add_row(
            result.collection,
            result.api or "-",
            f"[{_STATUS_STYLES.get(result.status, '')}]{result.status}[/]",
            f"{result.rows_upserted:,}",
            f"{result.rows_deleted:,}",
            result.message or "",
        )
    if outcome.error:
        table.caption = outcome.error
    return table


async def sync_in_foreground(settings: Settings, id_or_name: str, console: Console) -> RunOutcome:
    """Run one manual sync now and print its progress and summary; Conflict if one is running."""
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            deps = SyncDependencies(engine, http, settings)
            source = await deps.sources.find(id_or_name)
            service = SyncService(deps)
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description:<32}"),
                TextColumn("{task.fields[rows]:>12,} rows"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress:
                tasks: dict[str, TaskID] = {}

                def show(collection: str, rows: int, finished: bool) -> None:
                    if collection not in tasks:
                        tasks[collection] = progress.add_task(collection, total=None, rows=0)
                    progress.update(tasks[collection], rows=rows)
                    if finished:
                        progress.update(tasks[collection], total=1, completed=1)

                outcome = await service.run(source.id, "manual", progress=show)
            if outcome is None:
                raise Conflict(f"a sync of source {source.name!r} is already running")
            console.print(summary_table(outcome))
            return outcome
    finally:
        await engine.dispose()
