"""The sync service: the per-source schedule, and the API to start and read sync runs and
backfills."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI

from shared.db import create_engine
from shared.settings import Settings
from shared.web import create_service_app
from sync_service import backfills_api, syncs_api
from sync_service.backfill_service import BackfillService
from sync_service.runner import SyncDependencies
from sync_service.scheduling import SyncScheduler
from sync_service.service import SyncService

# Export downloads stream for minutes; the read timeout is per chunk, not per file.
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def create_app(settings: Settings, *, schedule: bool = True) -> FastAPI:
    """`schedule=False` serves the API without running scheduled syncs (tests, one-off use)."""
    engine = create_engine(settings.DATABASE_URL)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            deps = SyncDependencies(engine, http, settings)
            service = SyncService(deps)
            backfills = BackfillService(deps)
            scheduler = SyncScheduler(service, backfills=backfills)
            app.state.sync_service = service
            app.state.backfill_service = backfills
            app.state.scheduler = scheduler
            if schedule:
                scheduler.start()
            try:
                yield
            finally:
                scheduler.shutdown()
                await service.cancel_background()
                await backfills.cancel_background()
                await engine.dispose()
                if deps.clickhouse is not None:
                    await deps.clickhouse.clickhouse.close()
                await deps.counts.close()
                await deps.objects.close()

    admin = APIRouter()
    admin.include_router(syncs_api.router)
    admin.include_router(backfills_api.router)
    return create_service_app(
        service="sync",
        summary="Syncs Marketing Campaigns lists, segments, recipients and campaigns",
        settings=settings,
        engine=engine,
        lifespan=lifespan,
        admin_router=admin,
    )
