"""The ingest service: SendGrid's Event Webhook receiver, the source registry API, and the
console (/console/) with the API it calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI

from ingest_service import (
    activity_api,
    completeness_api,
    overview_api,
    sources_api,
    sync_relay,
    webhook,
    webhook_check_api,
)
from ingest_service.console_site import mount_console
from ingest_service.parsers import ParserPool
from ingest_service.writer import EventWriter
from shared.clickhouse import ClickHouse
from shared.clickhouse_event_rows import ClickHouseEventRows
from shared.db import create_engine
from shared.registry import SourceRegistry
from shared.settings import Settings, get_settings
from shared.web import create_service_app
from shared.webhook_arrivals import TestArrivals


def create_app(settings: Settings) -> FastAPI:
    engine = create_engine(settings.DATABASE_URL)
    # SQLite takes one writer at a time whatever the setting.
    writers = 1 if settings.is_sqlite else settings.INGEST_WRITERS
    # The writer's own connections (PostgreSQL), which pass JSON as text (see create_engine);
    # on SQLite one engine keeps every connection's attached schemas in step.
    writer_engine = (
        engine
        if settings.is_sqlite
        else create_engine(settings.DATABASE_URL, pool_size=writers, jsonb_as_text=True)
    )

    # The event tables' warehouse when it is ClickHouse: one connection per lane.
    clickhouse = (
        ClickHouse(settings.clickhouse_url, size=writers) if settings.clickhouse_url else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = EventWriter(
            writer_engine,
            max_events=settings.INGEST_BATCH_MAX_EVENTS,
            linger_seconds=settings.INGEST_BATCH_LINGER.total_seconds(),
            writers=writers,
            insert_first_below=settings.INGEST_INSERT_FIRST_BELOW,
            clickhouse=ClickHouseEventRows(clickhouse) if clickhouse else None,
        )
        parsers = ParserPool(settings.INGEST_PARSERS)
        async with httpx.AsyncClient() as http:
            # The configure flow runs here, beside the receiver: it waits in memory for the
            # test batch the receiver notes, and makes the receiver re-read a new key at once.
            arrivals = TestArrivals()
            registry = SourceRegistry(engine, settings, http, arrivals=arrivals)
            targets = webhook.WebhookTargets(registry.rows, registry.secrets)
            registry.webhooks.on_key_changed = targets.forget
            app.state.registry = registry
            app.state.webhook_targets = targets
            app.state.test_arrivals = arrivals
            app.state.sync_relay = sync_relay.SyncRelay(
                http, settings.sync_service_url, settings.admin_token
            )
            app.state.writer = writer
            app.state.parsers = parsers
            app.state.admission = webhook.Admission()
            await parsers.start()
            await writer.start()
            try:
                yield
            finally:
                await writer.stop()
                await parsers.stop()
                await registry.close()
                await engine.dispose()
                await writer_engine.dispose()
                if clickhouse is not None:
                    await clickhouse.close()

    # Every route behind the admin token, in one router.
    admin = APIRouter()
    admin.include_router(sources_api.router)
    admin.include_router(webhook_check_api.router)
    admin.include_router(completeness_api.router)
    admin.include_router(activity_api.router)
    admin.include_router(sync_relay.router)
    admin.include_router(sync_relay.backfill_router)
    admin.include_router(overview_api.router)
    app = create_service_app(
        service="ingest",
        summary="SendGrid Event Webhook receiver and source registry",
        settings=settings,
        engine=engine,
        lifespan=lifespan,
        admin_router=admin,
        clickhouse=clickhouse,
    )
    # The webhook authenticates with the token in its URL (and the signature), not the admin token.
    app.include_router(webhook.router)
    mount_console(app)
    return app


def app_from_environment() -> FastAPI:
    """For `uvicorn --factory ingest_service.app:app_from_environment` (e.g. with --workers)."""
    return create_app(get_settings())
