"""One check of a source's Event Webhook: read it back from SendGrid, compare, repair when the
source asks for it, look for silence, and record what was found.

What is read depends on who set the webhook up:
- a managed webhook (`webhook_managed` = `created` or `adopted`) is read by its id; with
  `webhook_repair` on, drift is repaired (settings re-applied, a rotated key stored, a deleted
  webhook recreated) and the repair recorded on the finding;
- a webhook set up by hand (`webhook_managed` null) is watched only when the source has a
  verification key: it is the account's webhook signing with that key, found by listing, and
  it is only ever read;
- a source with neither is not read at all.
Silence (shared/webhook_silence.py) is looked for on every source that has a webhook to
watch or has received events. A SendGrid error never escapes: it becomes the `check_failed`
or `silence_unchecked` finding, and what the failed part found before stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.schemas import WebhookCheckResult
from shared.sendgrid_stats import StatsApiError, StatsScopeMissing
from shared.settings import Settings
from shared.source_rows import Source
from shared.source_secrets import SourceSecrets
from shared.tables import sources, webhook_stats
from shared.webhook_drift import (
    CHECK_FAILED,
    DELETED,
    DISABLED,
    EVENTS_OFF,
    KEY_ROTATED,
    NOT_FOUND,
    SETTINGS_FINDINGS,
    SIGNING_OFF,
    SILENCE_UNCHECKED,
    SILENT,
    URL_CHANGED,
    Finding,
    drift,
    same_key,
)
from shared.webhook_findings import record
from shared.webhook_gauge import show
from shared.webhook_settings import (
    EVENT_TOGGLES,
    WebhookApiError,
    WebhookNotFound,
    WebhookSettings,
    WebhookSettingsClient,
    friendly_name,
)
from shared.webhook_silence import silence

log = logging.getLogger("sendgrid_source.webhook_check")

# Repaired by one PATCH of the webhook's settings.
_SETTINGS_REPAIRS = frozenset({DISABLED, URL_CHANGED, EVENTS_OFF})


@dataclass
class _Outcome:
    findings: list[Finding] = field(default_factory=list)
    repaired: set[str] = field(default_factory=set)
    keep: set[str] = field(default_factory=set)  # stored findings the check could not judge
    columns: dict[str, Any] = field(default_factory=dict)  # `sources` columns a repair changed


@dataclass
class WebhookCheck:
    """Checks sources' webhooks; `now` is the clock of the findings (tests inject one)."""

    engine: AsyncEngine
    settings: Settings
    http: httpx.AsyncClient
    secrets: SourceSecrets
    now: Callable[[], datetime] = utcnow

    async def check(self, source: Source) -> WebhookCheckResult:
        now = self.now()
        base_url = self.settings.sendgrid_base_url(source.region)
        api_key = self.secrets.api_key(source)
        url = self.settings.webhook_url(source.id, self.secrets.webhook_token(source))
        client = WebhookSettingsClient(self.http, base_url, api_key)
        outcome = _Outcome()
        try:
            if source.webhook_managed:
                await self._managed(client, source, url, outcome)
            elif source.webhook_verification_key:
                await self._by_key(client, source.webhook_verification_key, url, outcome)
        except WebhookApiError as exc:
            outcome.findings.append(Finding(CHECK_FAILED, f"the webhook was not read: {exc}"))
            outcome.keep |= SETTINGS_FINDINGS
        last_event_at = await self._last_event_at(source.id)
        if source.webhook_managed or source.webhook_verification_key or last_event_at:
            try:
                silent = await silence(
                    self.http,
                    base_url,
                    api_key,
                    quiet_since=last_event_at or source.created_at,
                    now=now,
                    alert=self.settings.WEBHOOK_SILENCE_ALERT,
                )
            except StatsScopeMissing as exc:
                outcome.findings.append(Finding(SILENCE_UNCHECKED, f"no silence check: {exc}"))
                outcome.keep.add(SILENT)
            except StatsApiError as exc:
                outcome.findings.append(Finding(SILENCE_UNCHECKED, f"no silence check: {exc}"))
                outcome.keep.add(SILENT)
            else:
                if silent is not None:
                    outcome.findings.append(silent)
        current, new = await record(
            self.engine,
            source.id,
            outcome.findings,
            now,
            repaired=outcome.repaired,
            keep=outcome.keep,
        )
        await self._update_source(source.id, now, outcome.columns)
        self._log(source, outcome, new)
        show(source.id, {f.finding for f in current})
        return WebhookCheckResult(source_id=source.id, checked_at=now, findings=current)

    async def _managed(
        self, client: WebhookSettingsClient, source: Source, url: str, outcome: _Outcome
    ) -> None:
        current: WebhookSettings | None = None
        if source.webhook_id:
            try:
                current = await client.get(source.webhook_id)
            except WebhookNotFound:
                current = None
        if current is None:
            outcome.findings.append(
                Finding(DELETED, f"SendGrid has no webhook with the id {source.webhook_id!r}")
            )
            if source.webhook_repair:
                await self._repair(outcome, self._recreate(client, source, url, outcome))
            return
        found = drift(current, url, source.webhook_verification_key)
        outcome.findings += found
        names = {f.finding for f in found}
        if source.webhook_repair and names:
            await self._repair(outcome, self._reapply(client, current.id, url, names, outcome))

    async def _by_key(
        self, client: WebhookSettingsClient, key: str, url: str, outcome: _Outcome
    ) -> None:
        """A webhook set up by hand: the one signing with the stored key, read-only."""
        listed = await client.list()
        match = next((w for w in listed.webhooks if same_key(w.public_key, key)), None)
        if match is None:
            outcome.findings.append(
                Finding(
                    NOT_FOUND,
                    f"none of the account's {len(listed.webhooks)} webhooks signs with the "
                    "stored verification key: it was deleted, its signing turned off or its "
                    "key rotated",
                )
            )
            return
        outcome.findings += drift(match, url, key)

    async def _repair(self, outcome: _Outcome, repair: Coroutine[Any, Any, None]) -> None:
        try:
            await repair
        except WebhookApiError as exc:
            outcome.findings.append(Finding(CHECK_FAILED, f"the repair failed: {exc}"))

    async def _recreate(
        self, client: WebhookSettingsClient, source: Source, url: str, outcome: _Outcome
    ) -> None:
        created = await client.create(url, friendly_name(source.name))
        outcome.columns["webhook_id"] = created.id
        key = await client.set_signing(created.id, True)
        outcome.columns["webhook_verification_key"] = key
        outcome.repaired.add(DELETED)

    async def _reapply(
        self,
        client: WebhookSettingsClient,
        webhook_id: str,
        url: str,
        names: set[str],
        outcome: _Outcome,
    ) -> None:
        if names & _SETTINGS_REPAIRS:
            await client.update(
                webhook_id, url=url, enabled=True, **{name: True for name in EVENT_TOGGLES}
            )
            outcome.repaired |= names & _SETTINGS_REPAIRS
        if SIGNING_OFF in names:
            # Turning signing on makes SendGrid create a new key pair: store its public key.
            outcome.columns["webhook_verification_key"] = await client.set_signing(webhook_id, True)
            outcome.repaired.add(SIGNING_OFF)
        elif KEY_ROTATED in names:
            key = await client.signing_key(webhook_id)
            if key:
                outcome.columns["webhook_verification_key"] = key
                outcome.repaired.add(KEY_ROTATED)

    async def _last_event_at(self, source_id: str) -> datetime | None:
        async with self.engine.connect() as connection:
            moment: datetime | None = await connection.scalar(
                sa.select(webhook_stats.c.last_event_at).where(
                    webhook_stats.c.source_id == source_id
                )
            )
        return moment

    async def _update_source(self, source_id: str, now: datetime, columns: dict[str, Any]) -> None:
        values = {"webhook_checked_at": now, **columns}
        if columns:
            values["updated_at"] = now
        async with self.engine.begin() as connection:
            await connection.execute(
                sources.update().where(sources.c.id == source_id).values(values)
            )

    def _log(self, source: Source, outcome: _Outcome, new: list[str]) -> None:
        details = {f.finding: f.detail for f in outcome.findings}
        for name in new:
            log.warning(
                "webhook finding",
                extra={
                    "fields": {
                        "source": source.name,
                        "source_id": source.id,
                        "finding": name,
                        "detail": details.get(name, ""),
                    }
                },
            )
        for name in sorted(outcome.repaired):
            log.warning(
                "webhook repaired",
                extra={
                    "fields": {
                        "source": source.name,
                        "source_id": source.id,
                        "finding": name,
                        "changed": sorted(outcome.columns),
                    }
                },
            )
