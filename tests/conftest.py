"""Fixtures: every database test runs on SQLite and on a real PostgreSQL.

`scripts/test` starts a throwaway PostgreSQL cluster and sets TEST_POSTGRES_URL
(postgresql+asyncpg://user@127.0.0.1:port). Each test gets a fresh database, cloned from a
migrated template database on PostgreSQL and from a migrated template file on SQLite, so
tests can commit, run concurrent transactions and DDL for real.
"""

from __future__ import annotations

import asyncio
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

from ingest_service.app import create_app as create_ingest_app
from shared.migrate import upgrade_control_schema
from shared.settings import Settings, load_settings

SENDGRID_TEST_URL = "https://sendgrid.test"
ADMIN_TOKEN = "test-admin-token-" + "x" * 24
ALL_SCOPES = ["marketing.read", "mail.send", "scopes.read", "suppression.read"]


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_control_schema(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> str:
    url = _postgres_url()

    async def build() -> None:
        admin = await asyncpg.connect(_asyncpg_dsn(url, "postgres"))
        await admin.execute("DROP DATABASE IF EXISTS sgs_template")
        await admin.execute("CREATE DATABASE sgs_template")
        await admin.close()

    asyncio.run(build())
    upgrade_control_schema(url.rsplit("/", 1)[0] + "/sgs_template")
    return "sgs_template"


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
    base = _postgres_url()
    name = f"t_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(base, "postgres"))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f"CREATE DATABASE {name} TEMPLATE {template_name}"))
    yield base.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        DATA_DIR=tmp_path / "data",
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=secrets.token_urlsafe(32),
        SENDGRID_API_URL=SENDGRID_TEST_URL,
        PUBLIC_URL="http://ingest.test",
    )


@pytest.fixture
def sendgrid() -> Iterator[respx.MockRouter]:
    """SendGrid's API; only /v3/scopes is answered unless a test adds routes."""
    with respx.mock(base_url=SENDGRID_TEST_URL, assert_all_called=False) as router:
        router.get("/v3/scopes").respond(200, json={"scopes": ALL_SCOPES})
        yield router


@pytest.fixture
async def ingest_app(settings: Settings, sendgrid: respx.MockRouter) -> AsyncIterator[FastAPI]:
    app = create_ingest_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def ingest(ingest_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the ingest service, carrying the admin token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingest_app),
        base_url="http://ingest.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client


def api_key() -> str:
    """A key shaped like SendGrid's: 'SG.' + 22 + '.' + 43 characters (69 in all)."""
    return "SG." + secrets.token_urlsafe(16)[:22] + "." + secrets.token_urlsafe(32)[:43]
