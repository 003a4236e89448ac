"""What a source's webhook received, as the console draws it (admin token): events per hour
and event type, and the latest rejected events with their reasons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from shared.clock import utcnow
from shared.event_hourly import MAX_HOURS, hourly_events
from shared.registry import SourceRegistry
from shared.rejected_events import MAX_REJECTED, latest_rejected
from shared.schemas import ErrorBody, HourlyEvents, RejectedEvents

router = APIRouter(
    prefix="/sources",
    tags=["sources"],
    responses={code: {"model": ErrorBody} for code in (401, 404)},
)


def _registry(request: Request) -> SourceRegistry:
    registry: SourceRegistry = request.app.state.registry
    return registry


@router.get("/{source_id}/events/hourly", response_model=HourlyEvents)
async def events_hourly(
    source_id: str,
    request: Request,
    hours: Annotated[
        int, Query(ge=1, le=MAX_HOURS, description="hours back, the current one included")
    ] = 48,
) -> HourlyEvents:
    """Events stored per hour (UTC, by when they were received) and event type, for the
    last `hours` hours up to the current one; every event type is listed, zeros too."""
    registry = _registry(request)
    source = await registry.rows.get(source_id)
    return await hourly_events(registry.counts, source, hours, utcnow())


@router.get("/{source_id}/rejected", response_model=RejectedEvents)
async def rejected_events(
    source_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_REJECTED)] = 20,
) -> RejectedEvents:
    """The latest events the receiver could not store as events, newest first: the reason
    and a preview of the payload as received."""
    registry = _registry(request)
    source = await registry.rows.get(source_id)
    return await latest_rejected(registry.engine, source, limit)
