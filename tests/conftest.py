"""Fixtures: every database test runs on SQLite and on a real PostgreSQL.

`scripts/test` starts a throwaway PostgreSQL cluster and sets TEST_POSTGRES_URL
(postgresql+asyncpg://user@127.0.0.1:port). Each test gets a fresh database, cloned from a
migrated template database on PostgreSQL and from a migrated template file on SQLite, so
tests can commit, run concurrent transactions and DDL for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from ingest_service.app import create_app as create_ingest_app
from shared.migrate import upgrade_control_schema
from shared.settings import Settings, load_settings
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.tcp_proxy import OutageProxy

SENDGRID_TEST_URL = "https://sendgrid.test"
ADMIN_TOKEN = "test-admin-token-" + "x" * 24
# What a key limited to reading and sending lists; a full-access key also has the Event
# Webhook's scopes (shared.webhook_settings), which registration reports on when missing.
READ_SCOPES = [
    "asm.groups.read",
    "asm.groups.suppressions.read",
    "mail.send",
    "marketing.read",
    "scopes.read",
    "stats.read",
    "suppression.read",
    "templates.read",
    "templates.versions.read",
]
WEBHOOK_SCOPES = [
    "user.webhooks.event.settings.create",
    "user.webhooks.event.settings.delete",
    "user.webhooks.event.settings.read",
    "user.webhooks.event.settings.update",
    "user.webhooks.event.test.create",
]
ALL_SCOPES = READ_SCOPES + WEBHOOK_SCOPES


def _postgres_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts "
            "a throwaway PostgreSQL for it"
        )
    return url


def _asyncpg_dsn(url: str, database: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + f"/{database}"


def _admin_sql(sql: str) -> None:
    """Run one statement on the test cluster's `postgres` database (CREATE/DROP DATABASE)."""

    async def run() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(_postgres_url(), "postgres"))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_control_schema(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database to clone; named per test session so parallel runs on one
    cluster do not drop each other's template."""
    url = _postgres_url()
    name = f"sgs_template_{os.getpid()}"

    _admin_sql(f"DROP DATABASE IF EXISTS {name}")
    _admin_sql(f"CREATE DATABASE {name}")
    upgrade_control_schema(url.rsplit("/", 1)[0] + f"/{name}")
    yield name
    _admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "warehouse.db"
        shutil.copy(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    with fresh_postgres_database(template_name) as url:
        yield url


@contextlib.contextmanager
def fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    """A new database on the test cluster (cloned from `template` if given), dropped after."""
    base = _postgres_url()
    name = f"t_{uuid.uuid4().hex[:12]}"

    clone = f" TEMPLATE {template}" if template else ""
    _admin_sql(f"CREATE DATABASE {name}{clone}")
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        DATA_DIR=tmp_path / "data",
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=secrets.token_urlsafe(32),
        SENDGRID_API_URL=SENDGRID_TEST_URL,
        PUBLIC_URL="http://ingest.test",
        # Parsing in a thread: a parser process would add a second of start-up to every
        # test's app. tests/test_parser_processes.py and the fault tests, which start the
        # service as deployed, run the processes.
        INGEST_PARSERS=0,
    )


@pytest.fixture
def sendgrid() -> Iterator[respx.MockRouter]:
    """SendGrid's API; only /v3/scopes is answered unless a test adds routes."""
    with respx.mock(base_url=SENDGRID_TEST_URL, assert_all_called=False) as router:
        router.get("/v3/scopes").respond(200, json={"scopes": ALL_SCOPES})
        yield router


@pytest.fixture
def account(sendgrid: respx.MockRouter) -> FakeAccount:
    """The fake SendGrid account behind `sendgrid`: an empty one that tests fill."""
    fake = FakeAccount(SENDGRID_TEST_URL)
    fake.install(sendgrid)
    return fake


@pytest.fixture
async def ingest_app(settings: Settings, sendgrid: respx.MockRouter) -> AsyncIterator[FastAPI]:
    app = create_ingest_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def admin_client(app: FastAPI) -> httpx.AsyncClient:
    """A client of an ingest app, in process, carrying the admin token."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ingest.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )


@pytest.fixture
async def ingest(ingest_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the ingest service, carrying the admin token."""
    async with admin_client(ingest_app) as client:
        yield client


def api_key() -> str:
    """A key shaped like SendGrid's: 'SG.' + 22 + '.' + 43 characters (69 in all)."""
    return "SG." + secrets.token_urlsafe(16)[:22] + "." + secrets.token_urlsafe(32)[:43]


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[OutageProxy]:
    """A cuttable TCP proxy in front of the test's PostgreSQL (see tests/tcp_proxy.py)."""
    url = make_url(settings.DATABASE_URL)
    proxy = OutageProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def proxied_app(settings: Settings, proxy: OutageProxy) -> AsyncIterator[FastAPI]:
    """The ingest app, reaching its database through `proxy`."""
    url = make_url(settings.DATABASE_URL).set(host="127.0.0.1", port=proxy.port)
    proxied = settings.model_copy(
        update={"DATABASE_URL": url.render_as_string(hide_password=False)}
    )
    app = create_ingest_app(proxied)
    async with app.router.lifespan_context(app):
        yield app
