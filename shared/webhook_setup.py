"""Configuring a source's Event Webhook with the source's own API key: adopt or create the
webhook, turn signing on and keep its key, then have SendGrid send its test batch and see
whether it reaches the receiver.

Only a webhook already at this source's URL, the one the source already manages, or one the
caller names (`adopt_webhook_id`) is ever changed; any other webhook of the account is only
read. No step's failure loses the source: each becomes a warning saying what failed and what
to do, and what was done before it stays recorded on the `sources` row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.settings import Settings
from shared.signature import InvalidVerificationKey, load_verification_key
from shared.source_rows import Source
from shared.source_secrets import SourceSecrets
from shared.tables import sources
from shared.webhook_arrivals import (
    ARRIVED,
    FAILED,
    NOT_ARRIVED,
    TestArrivals,
    arrived_since,
    wait_for_arrival,
)
from shared.webhook_permissions import WebhookPermissions
from shared.webhook_settings import (
    CREATE_SCOPE,
    TEST_SCOPE,
    WebhookApiError,
    WebhookLimitReached,
    WebhookList,
    WebhookSettings,
    WebhookSettingsClient,
    friendly_name,
)

CREATED = "created"
ADOPTED = "adopted"
# SendGrid retries its test batch for up to 10 minutes (its API reference for
# POST /v3/user/webhooks/event/test).
_TEST_RETRIES_FOR = "10 minutes"


class SetupStopped(Exception):
    """No webhook could be chosen; `str()` is the warning."""


def _listed(listing: WebhookList) -> str:
    return "; ".join(f"{w.id} -> {w.url}" for w in listing.webhooks) or "none"


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds:g} s"


class WebhookSetup:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        secrets: SourceSecrets,
        http: httpx.AsyncClient,
        *,
        arrivals: TestArrivals | None = None,
        on_key_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.secrets = secrets
        self.http = http
        self.arrivals = arrivals
        self.on_key_changed = on_key_changed

    def client(self, source: Source) -> WebhookSettingsClient:
        base_url = self.settings.sendgrid_base_url(source.region)
        return WebhookSettingsClient(self.http, base_url, self.secrets.api_key(source))

    async def configure(self, source: Source, adopt_webhook_id: str | None = None) -> list[str]:
        """Adopt or create, sign, test; the warnings say what was skipped or failed."""
        permissions = WebhookPermissions.of(source.scopes)
        warnings = permissions.warnings()
        if not permissions.can_configure:
            return [*warnings, permissions.refusal(source.id)]
        client = self.client(source)
        url = self.settings.webhook_url(source.id, self.secrets.webhook_token(source))
        try:
            webhook, origin = await self._choose(client, source, url, adopt_webhook_id, permissions)
        except SetupStopped as exc:
            return [*warnings, str(exc)]
        await self._store(source.id, webhook_id=webhook.id, webhook_managed=origin)
        if off := webhook.events_off():
            warnings.append(
                f"webhook {webhook.id} has these event types off, so SendGrid does not send "
                f"them: {', '.join(off)} (turn them on in SendGrid's webhook settings)"
            )
        await self._sign(client, source, webhook, warnings)
        if permissions.allows(TEST_SCOPE):
            await self._test(client, source, webhook.id, url, warnings)
        return warnings

    async def _choose(
        self,
        client: WebhookSettingsClient,
        source: Source,
        url: str,
        adopt_webhook_id: str | None,
        permissions: WebhookPermissions,
    ) -> tuple[WebhookSettings, str]:
        try:
            listing = await client.list()
        except WebhookApiError as exc:
            raise SetupStopped(
                f"the account's webhooks could not be read, so nothing was changed: {exc}"
            ) from None
        by_id = {w.id: w for w in listing.webhooks}
        if adopt_webhook_id is not None:
            chosen = by_id.get(adopt_webhook_id)
            if chosen is None:
                raise SetupStopped(
                    f"SendGrid has no webhook with id {adopt_webhook_id!r}, so nothing was "
                    f"changed; the account's webhooks are: {_listed(listing)}"
                )
            origin = source.webhook_managed if chosen.id == source.webhook_id else None
            return await self._point(client, chosen, url), origin or ADOPTED
        if source.webhook_id in by_id and source.webhook_managed:
            return await self._point(client, by_id[source.webhook_id], url), source.webhook_managed
        at_url = [w for w in listing.webhooks if w.url == url]
        if at_url:
            return await self._point(client, at_url[0], url), ADOPTED
        if not permissions.allows(CREATE_SCOPE):
            raise SetupStopped(
                f"no webhook of the account points at this source's URL, and the API key lacks "
                f"the {CREATE_SCOPE} scope to create one: add the scope, or let this source "
                f'take over an existing webhook with {{"adopt_webhook_id": "<id>"}}; the '
                f"account's webhooks are: {_listed(listing)}"
            )
        try:
            created = await client.create(url, friendly_name(source.name))
        except WebhookLimitReached:
            raise SetupStopped(self._limit_message(source, listing)) from None
        except WebhookApiError as exc:
            raise SetupStopped(f"the webhook could not be created: {exc}") from None
        return created, CREATED

    def _limit_message(self, source: Source, listing: WebhookList) -> str:
        limit = listing.max_allowed if listing.max_allowed is not None else len(listing.webhooks)
        return (
            f"no webhook was created: the account already has the {limit} webhook(s) its "
            f"SendGrid plan allows ({_listed(listing)}). Either free one (delete a webhook you "
            f"no longer need in SendGrid, then POST /sources/{source.id}/webhook), or let this "
            f"source take one over: POST /sources/{source.id}/webhook with "
            f'{{"adopt_webhook_id": "<id>"}} (CLI: sendgrid-source sources webhook '
            f"{source.name!r} --adopt <id>); it is then pointed at this source's URL"
        )

    async def _point(
        self, client: WebhookSettingsClient, webhook: WebhookSettings, url: str
    ) -> WebhookSettings:
        """Point an adopted (or managed) webhook at this source's URL, enabled."""
        if webhook.url == url and webhook.enabled:
            return webhook
        try:
            updated = await client.update(webhook.id, url=url, enabled=True)
        except WebhookApiError as exc:
            raise SetupStopped(
                f"webhook {webhook.id} could not be pointed at this source's URL: {exc}"
            ) from None
        # The update's answer has no key: keep the one the listing showed.
        updated.public_key = updated.public_key or webhook.public_key
        return updated

    async def _sign(
        self,
        client: WebhookSettingsClient,
        source: Source,
        webhook: WebhookSettings,
        warnings: list[str],
    ) -> bool:
        """Signing on (its existing key kept when it is already on); the key stored."""
        try:
            key = webhook.public_key or await client.set_signing(webhook.id, True)
            load_verification_key(key)
        except (WebhookApiError, InvalidVerificationKey) as exc:
            warnings.append(
                f"signing could not be turned on for webhook {webhook.id}, so signatures are "
                f"not checked: {exc}. Retry with POST /sources/{source.id}/webhook"
            )
            return False
        await self._store(source.id, webhook_verification_key=key)
        if self.on_key_changed is not None:
            self.on_key_changed(source.id)
        return True

    async def _test(
        self,
        client: WebhookSettingsClient,
        source: Source,
        webhook_id: str,
        url: str,
        warnings: list[str],
    ) -> None:
        waiter = self.arrivals.expect(source.id) if self.arrivals is not None else None
        since = utcnow()
        timeout = self.settings.WEBHOOK_TEST_TIMEOUT
        try:
            await client.send_test(webhook_id, url)
            arrived = await wait_for_arrival(
                self.engine, source.id, since, timeout.total_seconds(), waiter
            )
        except WebhookApiError as exc:
            warnings.append(f"SendGrid's test batch could not be requested: {exc}")
            await self._store(source.id, webhook_test_status=FAILED, webhook_tested_at=utcnow())
            return
        finally:
            if self.arrivals is not None:
                self.arrivals.forget(source.id)
        if arrived:
            await self._store(source.id, webhook_test_status=ARRIVED, webhook_tested_at=utcnow())
            return
        # Let a batch landing right now be seen before saying it did not.
        await asyncio.sleep(0)
        if await arrived_since(self.engine, source.id, since):
            return
        await self._store(source.id, webhook_test_status=NOT_ARRIVED, webhook_tested_at=utcnow())
        warnings.append(
            f"SendGrid's test batch did not reach the receiver within {_duration(timeout)} "
            f"(WEBHOOK_TEST_TIMEOUT): check that PUBLIC_URL ({self.settings.PUBLIC_URL}) is "
            "reachable from the internet and leads to this ingest service. SendGrid "
            f"retries the test for up to {_TEST_RETRIES_FOR}; once it lands, "
            f"GET /sources/{source.id} shows webhook_management.test_status 'arrived'"
        )

    async def _store(self, source_id: str, **values: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                sources.update()
                .where(sources.c.id == source_id)
                .values(**values, updated_at=utcnow())
            )
