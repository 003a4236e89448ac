"""Configuring a source's Event Webhook in SendGrid (create, adopt, sign, test) and deleting it
on removal, through the registry API, against the fake account's webhooks; SendGrid's test
batch is a real signed POST to the running ingest app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa
from fastapi import FastAPI

from shared.settings import Settings
from shared.tables import sources
from shared.webhook_settings import (
    CREATE_SCOPE,
    DELETE_SCOPE,
    EVENT_TOGGLES,
    READ_SCOPE,
    TEST_SCOPE,
    UPDATE_SCOPE,
)
from tests.conftest import ALL_SCOPES, READ_SCOPES, SENDGRID_TEST_URL, WEBHOOK_SCOPES, api_key
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.fake_sendgrid.webhooks import TEST_EMAIL
from tests.fake_sendgrid.webhooks import test_batch as sendgrid_test_batch
from tests.webhook_helpers import Signer, body_of, rows

EU_API = "https://api.eu.sendgrid.com"


@pytest.fixture
def arrival_timeout() -> float:
    """WEBHOOK_TEST_TIMEOUT: long, as an arrival ends the wait at once; tests of a batch
    that never comes parametrize it short."""
    return 30.0


@pytest.fixture
def api_url() -> str | None:
    return SENDGRID_TEST_URL


@pytest.fixture
def settings(settings: Settings, arrival_timeout: float, api_url: str | None) -> Settings:
    return settings.model_copy(
        update={
            "WEBHOOK_TEST_TIMEOUT": timedelta(seconds=arrival_timeout),
            "SENDGRID_API_URL": api_url,
        }
    )


def deliver_to(receiver: httpx.AsyncClient) -> Any:
    async def deliver(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await receiver.post(
            url, content=body, headers={"Content-Type": "application/json", **headers}
        )

    return deliver


@pytest.fixture
async def account(sendgrid: respx.MockRouter, ingest_app: FastAPI) -> AsyncIterator[FakeAccount]:
    """An account whose key has every webhook scope; its test batches go to the ingest app."""
    fake = FakeAccount(SENDGRID_TEST_URL)
    fake.install(sendgrid)
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": ALL_SCOPES})
    transport = httpx.ASGITransport(app=ingest_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as receiver:
        fake.webhooks.deliver = deliver_to(receiver)
        yield fake
        await asyncio.gather(*fake.webhooks.deliveries, return_exceptions=True)


async def register(client: httpx.AsyncClient, name: str = "SendGrid", **extra: Any) -> Any:
    response = await client.post("/sources", json={"name": name, "api_key": api_key(), **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def landed(account: FakeAccount) -> list[httpx.Response]:
    """The test batches' answers from the receiver."""
    return list(await asyncio.gather(*account.webhooks.deliveries))


def path_of(source: dict[str, Any]) -> str:
    return str(source["webhook_url"]).removeprefix("http://ingest.test")


async def stored_key(app: FastAPI, source_id: str) -> str | None:
    async with app.state.engine.connect() as connection:
        key = await connection.scalar(
            sa.select(sources.c.webhook_verification_key).where(sources.c.id == source_id)
        )
    return str(key) if key is not None else None


async def test_configure_creates_a_signed_webhook_and_its_test_batch_arrives(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    source = await register(ingest, configure_webhook=True)

    managed = source["webhook_management"]
    [webhook] = account.webhooks.webhooks.values()
    assert managed["managed"] is True
    assert (managed["webhook_id"], managed["origin"]) == (webhook["id"], "created")
    assert (managed["signed"], managed["test_status"]) == (True, "arrived")
    assert managed["tested_at"] is not None
    assert source["webhook_signed"] is True
    assert source["warnings"] == []
    assert webhook["url"] == source["webhook_url"]
    assert webhook["enabled"] is True
    assert webhook["friendly_name"] == "sendgrid-source SendGrid"
    assert all(webhook[name] for name in EVENT_TOGGLES)
    assert await stored_key(ingest_app, source["id"]) == webhook["public_key"]
    assert account.webhooks.tests_sent == [(webhook["id"], source["webhook_url"])]
    # The test batch was signed by SendGrid's new key, checked, and stored like any other.
    [answer] = await landed(account)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == len(sendgrid_test_batch(0))
    assert [row["email"] for row in await rows(ingest_app, "sendgrid", "delivered")] == [TEST_EMAIL]
    shown = (await ingest.get(f"/sources/{source['id']}")).json()
    assert shown["webhook_management"] == managed


async def test_a_second_test_batch_arrives_though_it_is_all_duplicates(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    source = await register(ingest, configure_webhook=True)
    first = (await landed(account))[0].json()

    again = await ingest.post(f"/sources/{source['id']}/webhook")

    assert again.status_code == 200, again.text
    body = again.json()
    assert body["webhook_management"]["test_status"] == "arrived"
    assert body["webhook_management"]["origin"] == "created"
    assert len(account.webhooks.webhooks) == 1
    second = (await landed(account))[1].json()
    assert (first["stored"], second["stored"]) == (7, 0)
    assert second["duplicates"] == 7


async def test_the_stored_key_checks_every_later_batch(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    source = await register(ingest, configure_webhook=True)
    await landed(account)
    webhook_id = source["webhook_management"]["webhook_id"]
    event = {"email": "a@example.com", "event": "processed", "timestamp": 1700000000}
    body = body_of([{**event, "sg_event_id": "signed-by-sendgrid"}])

    signed = await ingest.post(
        path_of(source), content=body, headers=account.webhooks.signed_headers(webhook_id, body)
    )
    forged = await ingest.post(path_of(source), content=body, headers=Signer().headers(body))
    unsigned = await ingest.post(path_of(source), content=body)

    assert signed.status_code == 200, signed.text
    assert signed.json()["stored"] == 1
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    stored = await rows(ingest_app, "sendgrid", "processed")
    assert "signed-by-sendgrid" in {row["sg_event_id"] for row in stored}


async def test_configure_adopts_the_webhook_already_at_the_sources_url(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    source = await register(ingest)
    other = account.webhooks.add("https://other.example/hook", enabled=True)
    untouched = dict(other)
    existing = account.webhooks.add(
        source["webhook_url"], signed=True, enabled=True, **dict.fromkeys(EVENT_TOGGLES, True)
    )

    response = await ingest.post(f"/sources/{source['id']}/webhook", json={})

    assert response.status_code == 200, response.text
    managed = response.json()["webhook_management"]
    assert (managed["webhook_id"], managed["origin"]) == (existing["id"], "adopted")
    assert managed["test_status"] == "arrived"
    assert response.json()["warnings"] == []
    assert len(account.webhooks.webhooks) == 2
    assert account.webhooks.webhooks[other["id"]] == untouched
    # Signing was already on: its key is kept, not rotated.
    assert await stored_key(ingest_app, source["id"]) == existing["public_key"]
    assert account.webhooks.webhooks[existing["id"]]["public_key"] == existing["public_key"]


async def test_the_plans_limit_names_the_webhooks_and_the_ways_out(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    account.webhooks.max_allowed = 1
    other = account.webhooks.add("https://other.example/hook", enabled=True)
    untouched = dict(other)

    source = await register(ingest, configure_webhook=True)

    assert source["webhook_management"]["managed"] is False
    [warning] = source["warnings"]
    assert f"{other['id']} -> https://other.example/hook" in warning
    assert "1 webhook(s) its SendGrid plan allows" in warning
    assert "adopt_webhook_id" in warning
    assert "delete a webhook" in warning
    assert account.webhooks.webhooks == {other["id"]: untouched}
    assert (await ingest.get(f"/sources/{source['id']}")).status_code == 200


async def test_adopting_a_named_webhook_points_it_at_the_source(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    account.webhooks.max_allowed = 1
    other = account.webhooks.add("https://other.example/hook", **dict.fromkeys(EVENT_TOGGLES, True))
    source = await register(ingest, configure_webhook=True)

    response = await ingest.post(
        f"/sources/{source['id']}/webhook", json={"adopt_webhook_id": other["id"]}
    )

    assert response.status_code == 200, response.text
    managed = response.json()["webhook_management"]
    assert (managed["webhook_id"], managed["origin"]) == (other["id"], "adopted")
    assert (managed["signed"], managed["test_status"]) == (True, "arrived")
    adopted = account.webhooks.webhooks[other["id"]]
    assert (adopted["url"], adopted["enabled"]) == (source["webhook_url"], True)
    assert await stored_key(ingest_app, source["id"]) == adopted["public_key"]


async def test_adopting_an_unknown_id_changes_nothing(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    other = account.webhooks.add("https://other.example/hook")
    source = await register(ingest)

    response = await ingest.post(
        f"/sources/{source['id']}/webhook", json={"adopt_webhook_id": "no-such-id"}
    )

    assert response.status_code == 200, response.text
    [warning] = response.json()["warnings"]
    assert "no webhook with id 'no-such-id'" in warning
    assert other["id"] in warning
    assert account.webhooks.webhooks[other["id"]]["url"] == "https://other.example/hook"


async def test_a_key_without_webhook_scopes_registers_and_names_them(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter, account: FakeAccount
) -> None:
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": READ_SCOPES})

    source = await register(ingest, configure_webhook=True)

    assert source["webhook_management"]["managed"] is False
    warnings = "\n".join(source["warnings"])
    for scope in WEBHOOK_SCOPES:
        assert scope in warnings
    assert "was not configured" in warnings
    assert "Point SendGrid at the webhook" in warnings
    assert account.webhooks.webhooks == {}
    assert (await ingest.get(f"/sources/{source['id']}")).status_code == 200


async def test_a_key_without_the_test_scope_configures_without_a_test(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter, account: FakeAccount
) -> None:
    scopes = [s for s in ALL_SCOPES if s != TEST_SCOPE]
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": scopes})

    source = await register(ingest, configure_webhook=True)

    managed = source["webhook_management"]
    assert (managed["origin"], managed["signed"], managed["test_status"]) == (
        "created",
        True,
        None,
    )
    [warning] = source["warnings"]
    assert TEST_SCOPE in warning
    assert account.webhooks.tests_sent == []


@pytest.mark.parametrize("arrival_timeout", [0.3])
async def test_a_test_batch_that_does_not_come_is_reported_then_noticed_late(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    account.webhooks.deliver = None

    source = await register(ingest, configure_webhook=True)

    assert source["webhook_management"]["test_status"] == "not_arrived"
    [warning] = source["warnings"]
    assert "WEBHOOK_TEST_TIMEOUT" in warning
    assert "PUBLIC_URL (http://ingest.test)" in warning
    assert len(account.webhooks.tests_sent) == 1
    # SendGrid retries the test: when it lands later, the receiver records it.
    webhook_id = source["webhook_management"]["webhook_id"]
    body = json.dumps(sendgrid_test_batch(1700000000)).encode()
    late = await ingest.post(
        path_of(source), content=body, headers=account.webhooks.signed_headers(webhook_id, body)
    )
    assert late.status_code == 200, late.text
    shown = (await ingest.get(f"/sources/{source['id']}")).json()
    assert shown["webhook_management"]["test_status"] == "arrived"


async def test_a_refused_test_request_is_failed(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    account.forbidden.add("/v3/user/webhooks/event/test")

    source = await register(ingest, configure_webhook=True)

    assert source["webhook_management"]["test_status"] == "failed"
    [warning] = source["warnings"]
    assert "test batch could not be requested" in warning
    assert TEST_SCOPE in warning


async def test_removal_deletes_a_created_webhook(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    source = await register(ingest, configure_webhook=True)
    webhook_id = source["webhook_management"]["webhook_id"]

    response = await ingest.delete(f"/sources/{source['id']}", params={"remove_webhook": "true"})

    assert response.status_code == 200, response.text
    assert response.json()["webhook"] == f"webhook {webhook_id} (created) was deleted from SendGrid"
    assert account.webhooks.deleted == [webhook_id]
    assert (await ingest.get(f"/sources/{source['id']}")).status_code == 404


async def test_removal_keeps_an_adopted_webhook_unless_asked_twice(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    first = await register(ingest, "First")
    adopted = account.webhooks.add(first["webhook_url"], enabled=True)
    await ingest.post(f"/sources/{first['id']}/webhook")
    second = await register(ingest, "Second")
    other = account.webhooks.add(second["webhook_url"], enabled=True)
    await ingest.post(f"/sources/{second['id']}/webhook")

    kept = await ingest.delete(f"/sources/{first['id']}", params={"remove_webhook": "true"})
    deleted = await ingest.delete(
        f"/sources/{second['id']}",
        params={"remove_webhook": "true", "remove_adopted_webhook": "true"},
    )

    assert kept.status_code == 200, kept.text
    assert "was adopted, not created" in kept.json()["webhook"]
    assert "remove_adopted_webhook=true" in kept.json()["webhook"]
    assert deleted.json()["webhook"] == f"webhook {other['id']} (adopted) was deleted from SendGrid"
    assert account.webhooks.deleted == [other["id"]]
    assert adopted["id"] in account.webhooks.webhooks


async def test_removal_of_a_webhook_already_gone_is_not_an_error(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    source = await register(ingest, configure_webhook=True)
    webhook_id = source["webhook_management"]["webhook_id"]
    del account.webhooks.webhooks[webhook_id]

    response = await ingest.delete(f"/sources/{source['id']}", params={"remove_webhook": "true"})

    assert response.status_code == 200, response.text
    assert response.json()["webhook"] == f"webhook {webhook_id} was already gone from SendGrid"


async def test_a_failed_deletion_keeps_the_source(
    ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    source = await register(ingest, configure_webhook=True)
    webhook_id = source["webhook_management"]["webhook_id"]
    account.forbidden.add(f"/v3/user/webhooks/event/settings/{webhook_id}")

    response = await ingest.delete(f"/sources/{source['id']}", params={"remove_webhook": "true"})
    plain = await ingest.delete(f"/sources/{source['id']}")

    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "the source was not removed" in message
    assert DELETE_SCOPE in message
    assert plain.status_code == 204
    assert webhook_id in account.webhooks.webhooks


async def test_webhook_repair_is_stored_and_shown(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await register(ingest)

    on = await ingest.patch(f"/sources/{source['id']}", json={"webhook_repair": True})
    off = await ingest.patch(f"/sources/{source['id']}", json={"webhook_repair": False})

    assert on.json()["webhook_management"]["repair"] is True
    assert off.json()["webhook_management"]["repair"] is False
    async with ingest_app.state.engine.connect() as connection:
        stored = await connection.scalar(
            sa.select(sources.c.webhook_repair).where(sources.c.id == source["id"])
        )
    assert stored is False


@pytest.mark.parametrize("api_url", [None])
async def test_an_eu_source_configures_on_the_eu_api(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter, ingest_app: FastAPI
) -> None:
    eu = FakeAccount(EU_API)
    eu.scopes = ALL_SCOPES
    sendgrid.route(host="api.eu.sendgrid.com").mock(side_effect=eu.answer)

    source = await register(ingest, "SendGrid EU", region="eu", configure_webhook=True)

    [webhook] = eu.webhooks.webhooks.values()
    assert webhook["url"] == source["webhook_url"]
    assert source["webhook_management"]["origin"] == "created"
    assert source["webhook_management"]["signed"] is True
    assert eu.webhooks.tests_sent == [(webhook["id"], source["webhook_url"])]


async def test_registration_without_configuring_says_which_webhook_features_the_key_allows(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter, account: FakeAccount
) -> None:
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": [*READ_SCOPES, READ_SCOPE]})

    source = await register(ingest)

    [note] = source["warnings"]
    assert note.startswith(
        f"Event Webhook features: the API key lacks {UPDATE_SCOPE}, {CREATE_SCOPE}, "
        f"{DELETE_SCOPE}, {TEST_SCOPE} (it allows the product to read the account's webhooks"
    )
    assert f"POST /sources/{source['id']}/webhook" in note
    assert account.webhooks.webhooks == {}


async def test_a_full_access_key_registers_without_a_webhook_note(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter
) -> None:
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": ALL_SCOPES})

    source = await register(ingest)

    assert source["warnings"] == []
