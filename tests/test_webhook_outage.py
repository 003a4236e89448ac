"""A database outage answers 503 with Retry-After, and SendGrid's resend lands exactly once."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import ADMIN_TOKEN
from tests.tcp_proxy import OutageProxy
from tests.webhook_helpers import body_of, count, new_source

pytestmark = pytest.mark.usefixtures("sendgrid")


@pytest.fixture
def backend() -> str:
    # The outage is a cut TCP connection, which only a database server has.
    return "postgres"


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
