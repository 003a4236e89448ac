"""`sendgrid-source backfill SOURCE [--days 30]`: fill a source with its past events from
SendGrid's Email Logs, in the foreground with a live progress line, as
`POST /sources/{id}/backfills` does in the sync service.

Exits 0 when every message of the range was read (succeeded), 1 otherwise: partial (a window
SendGrid could not list whole), interrupted (resume by running it again) or failed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from sendgrid_source.output import DATABASE_ERRORS, database_problem, fail, settings_or_exit
from shared.errors import AppError
from shared.schemas import BACKFILL_MAX_DAYS, BackfillRequest


def backfill(
    id_or_name: Annotated[str, typer.Argument(help="The source's id or name.")],
    days: Annotated[
        int,
        typer.Option(
            min=1,
            max=BACKFILL_MAX_DAYS,
            help="How many days back from --until (SendGrid keeps 30).",
        ),
    ] = BACKFILL_MAX_DAYS,
    since: Annotated[
        datetime | None, typer.Option(help="Messages created from (UTC), instead of --days.")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Messages created before (UTC).")] = None,
) -> None:
    """Backfill past events from SendGrid's Email Logs; resumes an interrupted backfill."""
    settings = settings_or_exit()
    from sync_service.backfill_foreground import backfill_in_foreground

    try:
        request = BackfillRequest(
            days=days,
            since=_utc(since),
            until=_utc(until),
        )
    except ValidationError as exc:
        fail("; ".join(str(error["msg"]) for error in exc.errors()))
    console = Console(highlight=False)
    try:
        record = asyncio.run(backfill_in_foreground(settings, id_or_name, request, console))
    except AppError as exc:
        fail(exc.message)
    except DATABASE_ERRORS as exc:
        database_problem(settings, exc)
    if record.status != "succeeded":
        raise typer.Exit(1)


def _utc(moment: datetime | None) -> datetime | None:
    # typer parses the option without a zone; the option's help says UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
