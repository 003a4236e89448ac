"""SendGrid's Event Webhook settings API (`/v3/user/webhooks/event/...`), the multiple-webhook
endpoints only: list, read, create, change, sign, test and delete an account's webhooks.

Both services use it: the ingest service when it configures a source's webhook, the sync
service when it checks one on every run. Every call names the webhook by its `id`; the legacy
id-less endpoints (which act on "the oldest webhook") are never used, so nothing here can touch
a webhook other than the one asked for. SendGrid's refusals become `WebhookApiError`s whose
message says what happened and what to do.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

# The event toggles of a webhook, as the settings object names them (the wire name of
# `spam_report` is `spamreport`). `account_status_change` is read with `?include=` but is not
# in the request schema, so it is never sent.
EVENT_TOGGLES: Final = (
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

# Scopes of a restricted key, per operation (SendGrid's API key permissions list, "Webhook" block).
READ_SCOPE: Final = "user.webhooks.event.settings.read"
UPDATE_SCOPE: Final = "user.webhooks.event.settings.update"
CREATE_SCOPE: Final = "user.webhooks.event.settings.create"
DELETE_SCOPE: Final = "user.webhooks.event.settings.delete"
TEST_SCOPE: Final = "user.webhooks.event.test.create"

_PREFIX = "/v3/user/webhooks/event"
_TIMEOUT = 15.0


def friendly_name(source_name: str) -> str:
    """The name the product gives a webhook it creates, so a person sees whose it is."""
    return f"sendgrid-source {source_name}"


class WebhookSettings(BaseModel):
    """One webhook as SendGrid returns it; fields it leaves out are None."""

    model_config = ConfigDict(extra="allow")

    id: str
    url: str = ""
    enabled: bool = False
    friendly_name: str | None = None
    processed: bool = False
    dropped: bool = False
    delivered: bool = False
    deferred: bool = False
    bounce: bool = False
    open: bool = False
    click: bool = False
    spam_report: bool = False
    unsubscribe: bool = False
    group_unsubscribe: bool = False
    group_resubscribe: bool = False
    account_status_change: bool = False
    public_key: str | None = None  # present only while signing is on
    created_date: str | None = None
    updated_date: str | None = None

    def events_off(self) -> list[str]:
        return [name for name in EVENT_TOGGLES if not getattr(self, name)]


class WebhookList(BaseModel):
    max_allowed: int | None = None
    webhooks: list[WebhookSettings]


class WebhookApiError(Exception):
    """SendGrid refused a webhook call, or could not be reached; `str()` says what to do."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WebhookNotFound(WebhookApiError):
    """The webhook id is unknown to SendGrid: it was deleted."""


class WebhookLimitReached(WebhookApiError):
    """The account has as many webhooks as its plan allows (`max_allowed`)."""


class WebhookUrlTaken(WebhookApiError):
    """Another webhook of the account already has this URL (one URL, one webhook)."""


class WebhookScopeMissing(WebhookApiError):
    """The API key lacks the scope the call needs (403)."""


class WebhookKeyRejected(WebhookApiError):
    """SendGrid rejected the API key itself (401)."""


def _messages(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
    return str(body)[:200]


class WebhookSettingsClient:
    """One account's webhooks, with its API key, on its region's API host."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}

    async def list(self) -> WebhookList:
        body = await self._call(
            "GET", "/settings/all", READ_SCOPE, params={"include": "account_status_change"}
        )
        items = body.get("webhooks") if isinstance(body, dict) else None
        # SendGrid's own "zero webhooks" example is `{"webhooks": [{}]}`: entries without an
        # id are not webhooks.
        webhooks = [
            self._settings(item)
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and item.get("id")
        ]
        max_allowed = body.get("max_allowed") if isinstance(body, dict) else None
        return WebhookList(
            max_allowed=max_allowed if isinstance(max_allowed, int) else None, webhooks=webhooks
        )

    async def get(self, webhook_id: str) -> WebhookSettings:
        body = await self._call(
            "GET",
            f"/settings/{webhook_id}",
            READ_SCOPE,
            params={"include": "account_status_change"},
        )
        settings = self._settings(body)
        if settings.public_key is None:
            # The single-webhook answer has no date or key fields in its schema: ask for the key.
            settings.public_key = await self.signing_key(webhook_id) or None
        return settings

    async def create(self, url: str, friendly_name: str) -> WebhookSettings:
        """A new enabled webhook with every event type on (signing is a separate call)."""
        body = {"url": url, "enabled": True, "friendly_name": friendly_name}
        body |= {name: True for name in EVENT_TOGGLES}
        return self._settings(await self._call("POST", "/settings", CREATE_SCOPE, json=body))

    async def update(self, webhook_id: str, **fields: Any) -> WebhookSettings:
        answer = await self._call("PATCH", f"/settings/{webhook_id}", UPDATE_SCOPE, json=fields)
        return self._settings(answer)

    async def set_signing(self, webhook_id: str, enabled: bool) -> str:
        """Turn signing on or off; returns the public key (empty once off). Turning it on
        makes SendGrid create a new key pair."""
        body = await self._call(
            "PATCH", f"/settings/signed/{webhook_id}", UPDATE_SCOPE, json={"enabled": enabled}
        )
        return str(body.get("public_key") or "") if isinstance(body, dict) else ""

    async def signing_key(self, webhook_id: str) -> str:
        """The webhook's public key, empty while signing is off."""
        body = await self._call("GET", f"/settings/signed/{webhook_id}", READ_SCOPE)
        return str(body.get("public_key") or "") if isinstance(body, dict) else ""

    async def delete(self, webhook_id: str) -> None:
        await self._call("DELETE", f"/settings/{webhook_id}", DELETE_SCOPE)

    async def send_test(self, webhook_id: str, url: str) -> None:
        """Ask SendGrid to POST its fake test batch to `url` now (204)."""
        await self._call("POST", "/test", TEST_SCOPE, json={"id": webhook_id, "url": url})

    def _settings(self, body: Any) -> WebhookSettings:
        try:
            return WebhookSettings.model_validate(body)
        except ValidationError as exc:
            raise WebhookApiError(
                f"SendGrid's webhook settings answer was not understood ({exc.error_count()} "
                "problems, e.g. no id); try again later"
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        scope: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        url = f"{self.base_url}{_PREFIX}{path}"
        try:
            response = await self.http.request(
                method, url, params=params, json=json, headers=self._headers, timeout=_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise WebhookApiError(
                f"SendGrid could not be reached for {method} {_PREFIX}{path} "
                f"({type(exc).__name__}); try again, or check SENDGRID_API_URL and the network"
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        raise _refusal(response, method, f"{_PREFIX}{path}", scope)


def _refusal(response: httpx.Response, method: str, path: str, scope: str) -> WebhookApiError:
    status, detail = response.status_code, _messages(response)
    where = f"{method} {path}"
    if status == 401:
        return WebhookKeyRejected(
            f"SendGrid rejected the API key on {where} (401): check that it is whole and active",
            status=status,
        )
    if status == 403:
        return WebhookScopeMissing(
            f"the API key may not do {where}: it needs the {scope} scope (403: {detail})",
            status=status,
        )
    if status == 404:
        return WebhookNotFound(f"SendGrid has no such webhook ({where}: {detail})", status=status)
    lowered = detail.lower()
    if status == 400 and "maximum number of webhooks" in lowered:
        return WebhookLimitReached(f"SendGrid refused {where}: {detail}", status=status)
    if status == 400 and "already exists" in lowered:
        return WebhookUrlTaken(f"SendGrid refused {where}: {detail}", status=status)
    return WebhookApiError(f"SendGrid answered {status} to {where}: {detail}", status=status)
