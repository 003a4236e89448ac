"""Fixtures: a respx router behind one AsyncClient, fake time, and sync runs on a test database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings
from shared.source_rows import Source
from sync_service.client import RetryPolicy, SendGridClient
from sync_service.contacts_export import ExportPolicy
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.conftest import SENDGRID_TEST_URL, api_key
from tests.fake_sendgrid.payloads import API
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.sync.fakes import API_KEY, FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def sendgrid_router() -> respx.Router:
    # Every request must hit a declared route: an unexpected URL fails the test.
    return respx.Router(assert_all_called=False, assert_all_mocked=True)


@pytest.fixture
async def sendgrid_http(sendgrid_router: respx.Router) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.MockTransport(sendgrid_router.async_handler)
    async with httpx.AsyncClient(transport=transport) as http:
        yield http


@pytest.fixture
def sendgrid_api(sendgrid_http: httpx.AsyncClient, fake_time: FakeTime) -> SendGridClient:
    return SendGridClient(
        sendgrid_http,
        base_url=API,
        api_key=API_KEY,
        policy=RetryPolicy(max_attempts=4, backoff_initial=1.0, backoff_max=30.0),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


@pytest.fixture
async def sync_deps(
    settings: Settings, sendgrid: respx.MockRouter, fake_time: FakeTime
) -> AsyncIterator[SyncDependencies]:
    """What a sync run needs, against the test database and the mocked SendGrid."""
    engine = create_engine(settings.DATABASE_URL)
    async with httpx.AsyncClient() as http:
        yield SyncDependencies(
            engine,
            http,
            settings,
            retry=RetryPolicy(max_attempts=3),
            export=ExportPolicy(poll_initial=1.0, poll_max=5.0, max_wait=60.0),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
    await engine.dispose()


@pytest.fixture
def registry(sync_deps: SyncDependencies) -> SourceRegistry:
    """The admin side (what the ingest service's /sources does), on the same engine."""
    return SourceRegistry(sync_deps.engine, sync_deps.settings, sync_deps.http)


@pytest.fixture
async def source(registry: SourceRegistry) -> Source:
    created, _ = await registry.create(SourceCreate(name="SendGrid", api_key=api_key()))
    return created


@pytest.fixture
def sync_service(sync_deps: SyncDependencies) -> SyncService:
    return SyncService(sync_deps)


@pytest.fixture
async def replica_engines(settings: Settings) -> AsyncIterator[list[AsyncEngine]]:
    """Two engines on one database: two sync-service replicas."""
    engines = [create_engine(settings.DATABASE_URL), create_engine(settings.DATABASE_URL)]
    yield engines
    for engine in engines:
        await engine.dispose()


@pytest.fixture
async def account_client(
    account: FakeAccount, fake_time: FakeTime
) -> AsyncIterator[SendGridClient]:
    """A client of the fake account behind tests/conftest.py's `sendgrid` router."""
    async with httpx.AsyncClient() as http:
        yield SendGridClient(
            http,
            base_url=SENDGRID_TEST_URL,
            api_key=API_KEY,
            policy=RetryPolicy(max_attempts=4),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            max_in_flight=4,
        )
