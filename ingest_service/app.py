"""The ingest service: SendGrid's Event Webhook receiver and the source registry API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from ingest_service import sources_api
from shared.db import create_engine
from shared.logs import register_secret
from shared.registry import SourceRegistry
from shared.settings import Settings
from shared.web import admin_auth, install_error_handlers, install_operational_routes


def create_app(settings: Settings) -> FastAPI:
    engine = create_engine(settings.DATABASE_URL)
    register_secret(settings.admin_token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as http:
            app.state.registry = SourceRegistry(engine, settings, http)
            try:
                yield
            finally:
                await engine.dispose()

    app = FastAPI(
        title="sendgrid-source ingest",
        summary="SendGrid Event Webhook receiver and source registry",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    install_error_handlers(app, settings.DATABASE_RETRY_AFTER)
    install_operational_routes(app, "ingest", engine)
    app.include_router(sources_api.router, dependencies=[Depends(admin_auth(settings.admin_token))])
    return app
