"""Every source's health at a glance (admin token): `GET /overview` and
`GET /sources/{id}/overview`, what the console's pages show first.

Each source comes with its webhook summary (`GET /sources/{id}`), its latest runs (from the
sync service, through the relay) and its health judged from both (shared/source_health.py).
A sync service that cannot be reached does not fail the overview: its sources show why their
runs are unknown, and turn amber.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Request

from ingest_service.sync_relay import SyncRelay
from shared.clock import utcnow
from shared.errors import BadGateway
from shared.registry import SourceRegistry
from shared.schemas import ErrorBody, Overview, SourceOverview, SyncRun
from shared.source_health import source_health
from shared.source_rows import Source
from shared.webhook_summary import webhook_summary

# The newest run may be running; the one before it is then the last finished one.
RUNS_FOR_HEALTH = 2

router = APIRouter(tags=["sources"], responses={code: {"model": ErrorBody} for code in (401, 404)})


async def source_overview(
    registry: SourceRegistry, relay: SyncRelay, source: Source, now: datetime
) -> SourceOverview:
    public = registry.public(
        source, webhook=await webhook_summary(registry.engine, registry.counts, source)
    )
    runs: list[SyncRun] = []
    runs_error = None
    try:
        runs = await relay.runs(source.id, RUNS_FOR_HEALTH)
    except BadGateway as exc:
        runs_error = exc.message
    finished = next((run for run in runs if run.status != "running"), None)
    return SourceOverview(
        source=public,
        health=source_health(public, finished, now, runs_error=runs_error),
        last_run=runs[0] if runs else None,
        last_finished_run=finished,
        runs_error=runs_error,
    )


def _parts(request: Request) -> tuple[SourceRegistry, SyncRelay]:
    return request.app.state.registry, request.app.state.sync_relay


@router.get("/overview", response_model=Overview)
async def overview(request: Request) -> Overview:
    """Every active source with its health (green, amber, red, and why), webhook summary,
    and newest and last finished sync runs."""
    registry, relay = _parts(request)
    now = utcnow()
    sources = await registry.rows.list_sources()
    rows = await asyncio.gather(*(source_overview(registry, relay, s, now) for s in sources))
    return Overview(checked_at=now, sources=list(rows))


@router.get("/sources/{source_id}/overview", response_model=SourceOverview)
async def one_overview(source_id: str, request: Request) -> SourceOverview:
    """One source as a row of `GET /overview` shows it."""
    registry, relay = _parts(request)
    return await source_overview(registry, relay, await registry.rows.get(source_id), utcnow())
