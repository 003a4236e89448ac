"""SendGrid's Event Webhook settings API (`/v3/user/webhooks/event/...`) in the fake app, with
the answers and errors tsg_webhooks_v3.yaml gives, over the account's `WebhookAccount`.

Signing works as SendGrid's does: turning it on makes a P-256 key pair, the public key is
returned (base64 DER), and the test endpoint POSTs a batch signed with the private key to the
URL asked, through `WebhookAccount.deliver` (a test points it at the running receiver), after
answering 204 as SendGrid does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.fake_sendgrid.payloads import JSON

# Spelled out from SendGrid's documents, not imported from the product: a wrong header name or
# event list in the product must fail the tests, not be echoed by the fake.
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
EVENT_TOGGLES = (
    "processed",
    "dropped",
    "delivered",
    "deferred",
    "bounce",
    "open",
    "click",
    "spam_report",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
)
# What SendGrid's test batch is recognised by: its fixed recipient and message id.
TEST_EMAIL = "example@test.com"
TEST_MESSAGE_ID = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"

Deliver = Callable[[str, bytes, dict[str, str]], Coroutine[Any, Any, Any]]


def test_batch(now: int) -> list[JSON]:
    """The fake events SendGrid's test endpoint sends: one per type, to example@test.com."""
    kinds = ["processed", "delivered", "open", "click", "bounce", "dropped", "deferred"]
    return [
        {
            "email": TEST_EMAIL,
            "timestamp": now,
            "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": kind,
            "category": ["cat facts"],
            "sg_event_id": f"sendgrid-test-{kind}",
            "sg_message_id": TEST_MESSAGE_ID,
            **({"url": "http://www.sendgrid.com/"} if kind == "click" else {}),
            **({"reason": "500 unknown recipient", "type": "bounce"} if kind == "bounce" else {}),
        }
        for kind in kinds
    ]


@dataclass
class WebhookAccount:
    """An account's Event Webhooks: what they are, the plan's limit, and what was asked."""

    webhooks: dict[str, JSON] = field(default_factory=dict)
    max_allowed: int = 5
    deliver: Deliver | None = None
    # Each test request: (webhook id, url).
    tests_sent: list[tuple[str | None, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # The test batches on their way; a test awaits them to see them land.
    deliveries: list[asyncio.Task[Any]] = field(default_factory=list)
    # Every test batch of the account carries this time: two batches sent a second apart
    # are then the same events, which the receiver must store once.
    test_batch_time: int = field(default_factory=lambda: int(time.time()))
    _keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)

    def add(self, url: str, *, signed: bool = False, **settings: Any) -> JSON:
        """A webhook the account already has (made in SendGrid's UI, say)."""
        webhook = _new_webhook(url, settings)
        self.webhooks[webhook["id"]] = webhook
        if signed:
            self.sign(webhook["id"])
        return webhook

    def sign(self, webhook_id: str) -> str:
        """Signing on with a new key pair (what SendGrid does, and a key rotation)."""
        private = ec.generate_private_key(ec.SECP256R1())
        self._keys[webhook_id] = private
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public = base64.b64encode(der).decode()
        self.webhooks[webhook_id]["public_key"] = public
        return public

    def unsign(self, webhook_id: str) -> None:
        self._keys.pop(webhook_id, None)
        self.webhooks[webhook_id].pop("public_key", None)

    def signed_headers(self, webhook_id: str, body: bytes) -> dict[str, str]:
        private = self._keys.get(webhook_id)
        if private is None:
            return {}
        timestamp = str(int(time.time()))
        signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            TIMESTAMP_HEADER: timestamp,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_webhook(url: str, settings: dict[str, Any]) -> JSON:
    webhook: JSON = {
        "id": str(uuid.uuid4()),
        "url": url,
        "enabled": False,
        "friendly_name": None,
        **{name: False for name in EVENT_TOGGLES},
        "account_status_change": False,
        "created_date": _now(),
        "updated_date": _now(),
    }
    webhook.update(settings)
    return webhook


def _errors(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, **extra}]}, status_code=status)


_INVALID_ID = "Invalid id provided."


def _shown(webhook: JSON, include: str | None) -> JSON:
    shown = dict(webhook)
    if include != "account_status_change":
        shown.pop("account_status_change", None)
    return shown


_PREFIX = "/v3/user/webhooks/event"


def add_webhook_routes(app: FastAPI, account: WebhookAccount) -> None:
    """On the app itself, not an included router, so respx_route finds each route."""

    @app.get(_PREFIX + "/settings/all")
    async def list_webhooks(include: str | None = None) -> JSON:
        return {
            "max_allowed": account.max_allowed,
            "webhooks": [_shown(w, include) for w in account.webhooks.values()],
        }

    @app.post(_PREFIX + "/settings", status_code=201, response_model=None)
    async def create_webhook(request: Request) -> JSON | JSONResponse:
        body = await request.json()
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _errors(400, f"'{url}' is not a valid url")
        if any(w["url"] == url for w in account.webhooks.values()):
            return _errors(
                400,
                f"Webhook at '{url}' already exists. Please provide a unique URL.",
                id=str(uuid.uuid4()),
                url=url,
            )
        if len(account.webhooks) >= account.max_allowed:
            return _errors(
                400,
                "You have reached the maximum number of webhooks per your current billing plan.",
            )
        settings = {k: v for k, v in body.items() if k != "url" and k != "account_status_change"}
        webhook = _new_webhook(url, settings)
        account.webhooks[webhook["id"]] = webhook
        return _shown(webhook, None)

    @app.get(_PREFIX + "/settings/signed/{webhook_id}", response_model=None)
    async def get_signed(webhook_id: str) -> JSON | JSONResponse:
        webhook = account.webhooks.get(webhook_id)
        if webhook is None:
            return _errors(404, _INVALID_ID)
        return {"id": webhook_id, "public_key": webhook.get("public_key", "")}

    @app.patch(_PREFIX + "/settings/signed/{webhook_id}", response_model=None)
    async def set_signed(webhook_id: str, request: Request) -> JSON | JSONResponse:
        if webhook_id not in account.webhooks:
            return _errors(404, _INVALID_ID)
        enabled = (await request.json()).get("enabled")
        if enabled:
            return {"id": webhook_id, "public_key": account.sign(webhook_id)}
        account.unsign(webhook_id)
        return {"id": webhook_id, "public_key": ""}

    @app.get(_PREFIX + "/settings/{webhook_id}", response_model=None)
    async def get_webhook(webhook_id: str, include: str | None = None) -> JSON | JSONResponse:
        webhook = account.webhooks.get(webhook_id)
        if webhook is None:
            return _errors(404, _INVALID_ID)
        return _shown(webhook, include)

    @app.patch(_PREFIX + "/settings/{webhook_id}", response_model=None)
    async def update_webhook(webhook_id: str, request: Request) -> JSON | JSONResponse:
        webhook = account.webhooks.get(webhook_id)
        if webhook is None:
            return _errors(404, _INVALID_ID)
        body = await request.json()
        url = body.get("url")
        if url is not None and any(
            w["url"] == url and i != webhook_id for i, w in account.webhooks.items()
        ):
            return _errors(400, f"Webhook at '{url}' already exists. Please provide a unique URL.")
        webhook.update({k: v for k, v in body.items() if k != "account_status_change"})
        webhook["updated_date"] = _now()
        return _shown(webhook, None)

    @app.delete(_PREFIX + "/settings/{webhook_id}", status_code=204, response_model=None)
    async def delete_webhook(webhook_id: str) -> Response:
        if account.webhooks.pop(webhook_id, None) is None:
            return _errors(404, _INVALID_ID)
        account.deleted.append(webhook_id)
        return Response(status_code=204)

    @app.post(_PREFIX + "/test", status_code=204, response_model=None)
    async def send_test(request: Request) -> Response:
        body = await request.json()
        url, webhook_id = body.get("url"), body.get("id")
        if not isinstance(url, str):
            return _errors(400, "url is required")
        account.tests_sent.append((webhook_id, url))
        if account.deliver is not None:
            events = json.dumps(test_batch(account.test_batch_time), separators=(",", ":"))
            payload = events.encode() + b"\r\n"
            headers = account.signed_headers(webhook_id, payload) if webhook_id else {}
            # SendGrid answers 204 at once and POSTs the batch afterwards.
            account.deliveries.append(asyncio.create_task(account.deliver(url, payload, headers)))
        return Response(status_code=204)
