"""The sync service: the per-source schedule, and the API to start and read sync runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from shared.db import create_engine
from shared.logs import register_secret
from shared.registry import SourceRegistry
from shared.settings import Settings
from shared.web import admin_auth, install_error_handlers, install_operational_routes
from sync_service import syncs_api
from sync_service.runner import SyncDependencies
from sync_service.scheduling import SyncScheduler
from sync_service.service import SyncService

# Export downloads stream for minutes; the read timeout is per chunk, not per file.
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def create_app(settings: Settings, *, schedule: bool = True) -> FastAPI:
    """`schedule=False` serves the API without running scheduled syncs (tests, one-off use)."""
    engine = create_engine(settings.DATABASE_URL)
    register_secret(settings.admin_token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            registry = SourceRegistry(engine, settings, http)
            service = SyncService(SyncDependencies(engine, http, settings, registry))
            scheduler = SyncScheduler(service)
            app.state.sync_service = service
            app.state.scheduler = scheduler
            if schedule:
                scheduler.start()
            try:
                yield
            finally:
                scheduler.shutdown()
                await service.cancel_background()
                await engine.dispose()

    app = FastAPI(
        title="sendgrid-source sync",
        summary="Syncs Marketing Campaigns lists, segments, recipients and campaigns",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    install_error_handlers(app, settings.DATABASE_RETRY_AFTER)
    install_operational_routes(app, "sync", engine)
    app.include_router(syncs_api.router, dependencies=[Depends(admin_auth(settings.admin_token))])
    return app
