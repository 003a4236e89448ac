"""A database outage answers 503 with Retry-After, and SendGrid's resend lands exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from ingest_service.app import create_app
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.tcp_proxy import OutageProxy
from tests.webhook_helpers import body_of, count, new_source

pytestmark = pytest.mark.usefixtures("sendgrid")


@pytest.fixture
def backend() -> str:
    # The outage is a cut TCP connection, which only a database server has.
    return "postgres"


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[OutageProxy]:
    url = make_url(settings.DATABASE_URL)
    proxy = OutageProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def proxied_app(settings: Settings, proxy: OutageProxy) -> AsyncIterator[FastAPI]:
    url = make_url(settings.DATABASE_URL).set(host="127.0.0.1", port=proxy.port)
    proxied = settings.model_copy(
        update={"DATABASE_URL": url.render_as_string(hide_password=False)}
    )
    app = create_app(proxied)
    async with app.router.lifespan_context(app):
        yield app


def batch(start: int, size: int) -> bytes:
    return body_of(
        [
            {"email": f"u{n}@example.com", "event": "processed", "timestamp": 1700000000,
             "sg_event_id": f"outage-{n}"}
            for n in range(start, start + size)
        ]
    )  # fmt: skip


async def test_outage_answers_503_and_the_resend_lands_exactly_once(
    proxied_app: FastAPI, proxy: OutageProxy
) -> None:
    transport = httpx.ASGITransport(app=proxied_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://ingest.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        source = await new_source(client)
        before = await client.post(source["path"], content=batch(0, 100))
        assert before.status_code == 200

        proxy.cut()
        during = await client.post(source["path"], content=batch(100, 100))
        assert during.status_code == 503
        assert during.headers["Retry-After"] == "30"
        assert "retry" in during.json()["error"]["message"]
        assert (await client.get("/readyz")).status_code == 503

        proxy.restore()
        # SendGrid resends the refused batch, and (at-least-once) the accepted one too.
        resend = await client.post(source["path"], content=batch(100, 100))
        assert resend.json() == {"stored": 100, "duplicates": 0, "rejected": 0}
        again = await client.post(source["path"], content=batch(0, 200))
        assert again.json() == {"stored": 0, "duplicates": 200, "rejected": 0}
        assert (await client.get("/readyz")).status_code == 200
    assert await count(proxied_app, f"SELECT count(*) FROM {source['schema']}.processed") == 200
