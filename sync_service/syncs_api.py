"""REST API of sync runs: start one now, list a source's runs (admin token required).

The bodies are defined in shared/schemas.py: the ingest service relays these two routes for
the console (ingest_service/sync_relay.py) and documents the same shapes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from shared.schemas import CollectionRun, ErrorBody, SyncRun, SyncRunList, SyncStarted
from sync_service.ledger import RunRecord
from sync_service.service import SyncService


def _public(run: RunRecord) -> SyncRun:
    return SyncRun(
        id=run.id,
        source_id=run.source_id,
        trigger=run.trigger,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        collections=[CollectionRun(**vars(result)) for result in run.collections],
    )


def get_sync_service(request: Request) -> SyncService:
    service: SyncService = request.app.state.sync_service
    return service


SyncServiceDep = Annotated[SyncService, Depends(get_sync_service)]

_errors: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409)
}

router = APIRouter(prefix="/sources/{source_id}/syncs", tags=["syncs"], responses=_errors)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SyncStarted)
async def start_sync(source_id: str, service: SyncServiceDep) -> SyncStarted:
    """Start a sync now; 409 while one of this source is running (here or on a replica)."""
    return SyncStarted(run_id=await service.start(source_id, "manual"))


@router.get("", response_model=SyncRunList)
async def list_syncs(
    source_id: str,
    service: SyncServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SyncRunList:
    """The source's runs, newest first, each with what happened to every collection."""
    return SyncRunList(runs=[_public(run) for run in await service.runs(source_id, limit)])
