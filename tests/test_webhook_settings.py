"""The client of SendGrid's Event Webhook settings API, against the fake account's webhooks
(answers and errors as tsg_webhooks_v3.yaml gives them)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.webhook_settings import (
    EVENT_TOGGLES,
    WebhookKeyRejected,
    WebhookLimitReached,
    WebhookNotFound,
    WebhookScopeMissing,
    WebhookSettingsClient,
    WebhookUrlTaken,
)
from tests.conftest import SENDGRID_TEST_URL
from tests.fake_sendgrid.respx_route import FakeAccount

URL = "https://ingest.example.com/webhooks/4f0c/abc"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def settings_client(http: httpx.AsyncClient) -> WebhookSettingsClient:
    return WebhookSettingsClient(http, SENDGRID_TEST_URL, "SG.test")


async def test_create_turns_every_event_on_and_signing_returns_a_p256_key(
    account: FakeAccount, client: httpx.AsyncClient
) -> None:
    webhooks = settings_client(client)

    created = await webhooks.create(URL, "sendgrid-source SendGrid")
    public_key = await webhooks.set_signing(created.id, True)
    read = await webhooks.get(created.id)

    assert (created.url, created.enabled, created.friendly_name) == (
        URL,
        True,
        "sendgrid-source SendGrid",
    )
    assert created.events_off() == []
    assert created.public_key is None
    key = serialization.load_der_public_key(base64.b64decode(public_key))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert read.public_key == public_key
    assert await webhooks.signing_key(created.id) == public_key
    assert account.webhooks.webhooks[created.id]["public_key"] == public_key


async def test_the_list_skips_entries_without_an_id(
    sendgrid: respx.MockRouter, client: httpx.AsyncClient
) -> None:
    # SendGrid's own "Zero Webhooks" example.
    sendgrid.get("/v3/user/webhooks/event/settings/all").respond(
        200, json={"max_allowed": 5, "webhooks": [{}]}
    )

    listed = await settings_client(client).list()

    assert (listed.max_allowed, listed.webhooks) == (5, [])


async def test_the_list_reads_every_webhook_with_its_toggles(
    account: FakeAccount, client: httpx.AsyncClient
) -> None:
    account.webhooks.max_allowed = 2
    manual = account.webhooks.add("https://other.example.com/hook", enabled=True, click=True)

    listed = await settings_client(client).list()

    assert listed.max_allowed == 2
    [webhook] = listed.webhooks
    assert (webhook.id, webhook.url, webhook.enabled) == (manual["id"], manual["url"], True)
    assert webhook.events_off() == [name for name in EVENT_TOGGLES if name != "click"]


async def test_refusals_are_named_errors_that_say_what_to_do(
    account: FakeAccount, sendgrid: respx.MockRouter, client: httpx.AsyncClient
) -> None:
    webhooks = settings_client(client)
    account.webhooks.max_allowed = 1
    taken = account.webhooks.add(URL)

    with pytest.raises(WebhookUrlTaken, match=r"Webhook at '.*' already exists"):
        await webhooks.create(URL, "again")
    with pytest.raises(WebhookLimitReached, match="maximum number of webhooks"):
        await webhooks.create("https://second.example.com/hook", "second")
    with pytest.raises(WebhookNotFound, match="Invalid id provided"):
        await webhooks.get("no-such-id")
    await webhooks.delete(taken["id"])
    assert account.webhooks.deleted == [taken["id"]]
    with pytest.raises(WebhookNotFound):
        await webhooks.delete(taken["id"])

    account.forbidden.add("/v3/user/webhooks/event/settings/all")
    with pytest.raises(
        WebhookScopeMissing, match=r"needs the user\.webhooks\.event\.settings\.read"
    ):
        await webhooks.list()
    account.key_revoked = True
    with pytest.raises(WebhookKeyRejected, match="rejected the API key"):
        await webhooks.list()
