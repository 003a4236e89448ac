"""REST API of backfills from Email Logs: start one, list a source's, read one (admin token
required). The bodies are in shared/schemas.py; the ingest service relays these routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, status

from shared.schemas import BackfillList, BackfillRequest, BackfillRun, BackfillStarted, ErrorBody
from sync_service.backfill_ledger import BackfillRecord
from sync_service.backfill_service import BackfillService


def public(record: BackfillRecord) -> BackfillRun:
    return BackfillRun(**vars(record), progress=record.progress)


def get_backfill_service(request: Request) -> BackfillService:
    service: BackfillService = request.app.state.backfill_service
    return service


BackfillServiceDep = Annotated[BackfillService, Depends(get_backfill_service)]

router = APIRouter(
    prefix="/sources/{source_id}/backfills",
    tags=["backfills"],
    responses={code: {"model": ErrorBody} for code in (400, 401, 404, 409)},
)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=BackfillStarted)
async def start_backfill(
    source_id: str,
    service: BackfillServiceDep,
    request: Annotated[BackfillRequest | None, Body()] = None,
) -> BackfillStarted:
    """Read the source's past events from SendGrid's Email Logs (default: the last 30 days)
    and store those not stored yet. An interrupted backfill of the source is resumed instead
    (`resumed: true`, with its own range); 409 while one is running."""
    claim = await service.start(source_id, request or BackfillRequest())
    return BackfillStarted(
        backfill_id=claim.id,
        resumed=claim.resumed,
        since=claim.since,
        until=claim.until,
        reached=claim.reached,
    )


@router.get("", response_model=BackfillList)
async def list_backfills(
    source_id: str,
    service: BackfillServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BackfillList:
    """The source's backfills, newest first, with their progress and counts."""
    return BackfillList(backfills=[public(r) for r in await service.list(source_id, limit)])


@router.get("/{backfill_id}", response_model=BackfillRun)
async def get_backfill(
    source_id: str, backfill_id: str, service: BackfillServiceDep
) -> BackfillRun:
    """One backfill as it stands: poll it to follow a running one."""
    return public(await service.get(source_id, backfill_id))
