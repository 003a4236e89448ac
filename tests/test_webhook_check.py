"""The webhook check (shared/webhook_check.py) against the fake SendGrid's webhook settings
API and `/v3/stats`: each finding, repair, findings kept and cleared, logged once, the gauge,
webhooks set up by hand, and silence."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import webhook_findings as webhook_findings_table
from shared import webhook_gauge
from shared.db import create_engine
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings
from shared.source_rows import Source
from shared.tables import sources, webhook_findings, webhook_stats
from shared.webhook_check import WebhookCheck
from shared.webhook_drift import FINDINGS, Finding
from shared.webhook_settings import EVENT_TOGGLES
from tests.conftest import api_key
from tests.fake_sendgrid.respx_route import FakeAccount

EVERY_EVENT = {name: True for name in EVENT_TOGGLES}


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.DATABASE_URL)
    yield engine
    await engine.dispose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def registry(engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient) -> SourceRegistry:
    return SourceRegistry(engine, settings, http)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def checker_for(
    registry: SourceRegistry, clock: Clock, settings: Settings | None = None
) -> WebhookCheck:
    return WebhookCheck(
        registry.engine, settings or registry.settings, registry.http, registry.secrets, now=clock
    )


@pytest.fixture
def checker(registry: SourceRegistry, clock: Clock) -> WebhookCheck:
    return checker_for(registry, clock)


async def set_columns(engine: AsyncEngine, source_id: str, **values: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(sources.update().where(sources.c.id == source_id).values(values))


async def set_last_event(engine: AsyncEngine, source_id: str, moment: datetime) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            webhook_stats.delete().where(webhook_stats.c.source_id == source_id)
        )
        await connection.execute(
            webhook_stats.insert().values(source_id=source_id, last_event_at=moment)
        )


def webhook_url(registry: SourceRegistry, source: Source) -> str:
    return registry.settings.webhook_url(source.id, registry.secrets.webhook_token(source))


async def managed_source(
    registry: SourceRegistry, account: FakeAccount, *, repair: bool = False
) -> tuple[Source, str]:
    """A source whose webhook this product created: right, signed, key stored."""
    source, _ = await registry.create(SourceCreate(name="SendGrid", api_key=api_key()))
    hook = account.webhooks.add(
        webhook_url(registry, source),
        signed=True,
        enabled=True,
        friendly_name="sendgrid-source SendGrid",
        **EVERY_EVENT,
    )
    await set_columns(
        registry.engine,
        source.id,
        webhook_id=hook["id"],
        webhook_managed="created",
        webhook_repair=repair,
        webhook_verification_key=hook["public_key"],
    )
    return await registry.rows.get(source.id), hook["id"]


def gauge(source_id: str, finding: str) -> float | None:
    return REGISTRY.get_sample_value(
        "sendgrid_source_webhook_finding", {"source": source_id, "finding": finding}
    )


def _disable(account: FakeAccount, hook: str) -> None:
    account.webhooks.webhooks[hook]["enabled"] = False


def _other_url(account: FakeAccount, hook: str) -> None:
    account.webhooks.webhooks[hook]["url"] = "https://elsewhere.example.com/hook"


def _events_off(account: FakeAccount, hook: str) -> None:
    account.webhooks.webhooks[hook].update(click=False, open=False)


def _unsign(account: FakeAccount, hook: str) -> None:
    account.webhooks.unsign(hook)


def _rotate(account: FakeAccount, hook: str) -> None:
    account.webhooks.sign(hook)


def _delete(account: FakeAccount, hook: str) -> None:
    del account.webhooks.webhooks[hook]


DRIFTS: list[tuple[Callable[[FakeAccount, str], None], str, str]] = [
    (_disable, "disabled", "turned off"),
    (_other_url, "url_changed", "'https://elsewhere.example.com/hook'"),
    (_events_off, "events_off", "open, click"),
    (_unsign, "signing_off", "signing is off"),
    (_rotate, "key_rotated", "new key"),
    (_delete, "deleted", "no webhook with the id"),
]
DRIFT_IDS = [name for _, name, _ in DRIFTS]


async def test_a_right_webhook_has_no_findings(
    registry: SourceRegistry, account: FakeAccount, checker: WebhookCheck, clock: Clock
) -> None:
    source, _ = await managed_source(registry, account)

    result = await checker.check(source)

    assert result.findings == []
    assert [gauge(source.id, name) for name in FINDINGS] == [0.0] * len(FINDINGS)
    checked = await registry.rows.get(source.id)
    assert checked.webhook_checked_at == clock.moment


@pytest.mark.parametrize(("change", "finding", "detail"), DRIFTS, ids=DRIFT_IDS)
async def test_each_drift_is_found_and_nothing_changes_without_repair(
    registry: SourceRegistry,
    account: FakeAccount,
    checker: WebhookCheck,
    change: Callable[[FakeAccount, str], None],
    finding: str,
    detail: str,
) -> None:
    source, hook = await managed_source(registry, account)
    change(account, hook)
    before = copy.deepcopy(account.webhooks.webhooks)

    result = await checker.check(source)

    assert [f.finding for f in result.findings] == [finding]
    assert detail in result.findings[0].detail
    assert result.findings[0].repaired_at is None
    assert account.webhooks.webhooks == before
    assert gauge(source.id, finding) == 1.0
    stored = await registry.rows.get(source.id)
    assert (stored.webhook_id, stored.webhook_verification_key) == (
        source.webhook_id,
        source.webhook_verification_key,
    )


def assert_right(account: FakeAccount, hook: str, url: str, key: str | None) -> None:
    webhook = account.webhooks.webhooks[hook]
    assert webhook["enabled"] is True
    assert webhook["url"] == url
    assert [name for name in EVENT_TOGGLES if not webhook[name]] == []
    assert webhook.get("public_key")
    assert webhook["public_key"] == key


@pytest.mark.parametrize(("change", "finding", "detail"), DRIFTS, ids=DRIFT_IDS)
async def test_each_drift_is_repaired_with_repair_on(
    registry: SourceRegistry,
    account: FakeAccount,
    checker: WebhookCheck,
    clock: Clock,
    change: Callable[[FakeAccount, str], None],
    finding: str,
    detail: str,
) -> None:
    source, hook = await managed_source(registry, account, repair=True)
    change(account, hook)

    result = await checker.check(source)

    assert [(f.finding, f.repaired_at) for f in result.findings] == [(finding, clock.moment)]
    repaired = await registry.rows.get(source.id)
    if finding == "deleted":
        assert repaired.webhook_id not in (None, hook)
        assert account.webhooks.webhooks[str(repaired.webhook_id)]["friendly_name"] == (
            "sendgrid-source SendGrid"
        )
    else:
        assert repaired.webhook_id == hook
    assert_right(
        account,
        str(repaired.webhook_id),
        webhook_url(registry, source),
        repaired.webhook_verification_key,
    )
    # The next check finds it right: the finding is gone.
    clock.moment += timedelta(hours=1)
    assert (await checker.check(repaired)).findings == []
    assert gauge(source.id, finding) == 0.0


async def test_a_public_url_change_is_url_changed_and_repaired_to_the_new_url(
    registry: SourceRegistry, account: FakeAccount, settings: Settings, clock: Clock
) -> None:
    source, hook = await managed_source(registry, account, repair=False)
    moved = settings.model_copy(update={"PUBLIC_URL": "https://public.example.com"})
    new_url = moved.webhook_url(source.id, registry.secrets.webhook_token(source))

    found = await checker_for(registry, clock, moved).check(source)

    assert [f.finding for f in found.findings] == ["url_changed"]
    assert new_url in found.findings[0].detail
    assert account.webhooks.webhooks[hook]["url"] == webhook_url(registry, source)

    await set_columns(registry.engine, source.id, webhook_repair=True)
    await checker_for(registry, clock, moved).check(await registry.rows.get(source.id))
    assert account.webhooks.webhooks[hook]["url"] == new_url


async def test_a_finding_keeps_its_first_sighting_is_logged_once_and_goes_once_fixed(
    registry: SourceRegistry,
    account: FakeAccount,
    checker: WebhookCheck,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, hook = await managed_source(registry, account)
    first = clock.moment
    _disable(account, hook)
    caplog.set_level(logging.WARNING, logger="sendgrid_source.webhook_check")

    await checker.check(source)
    clock.moment += timedelta(hours=3)
    again = await checker.check(source)

    [disabled] = again.findings
    assert (disabled.first_seen_at, disabled.last_seen_at) == (first, clock.moment)
    warnings = [r for r in caplog.records if r.getMessage() == "webhook finding"]
    assert [r.fields["finding"] for r in warnings] == ["disabled"]  # type: ignore[attr-defined]

    account.webhooks.webhooks[hook]["enabled"] = True
    clock.moment += timedelta(hours=3)
    assert (await checker.check(source)).findings == []
    async with registry.engine.connect() as connection:
        assert (
            await connection.scalar(sa.select(sa.func.count()).select_from(webhook_findings)) == 0
        )
    assert gauge(source.id, "disabled") == 0.0


async def test_the_gauge_is_refreshed_from_the_table(
    registry: SourceRegistry, account: FakeAccount, checker: WebhookCheck
) -> None:
    source, hook = await managed_source(registry, account)
    _events_off(account, hook)
    await checker.check(source)
    webhook_gauge.WEBHOOK_FINDING.clear()  # as in another process that did not run the check
    assert gauge(source.id, "events_off") is None

    await webhook_gauge.refresh(registry.engine)

    assert gauge(source.id, "events_off") == 1.0
    assert gauge(source.id, "disabled") == 0.0


async def test_a_hand_made_webhook_is_found_by_its_key_and_only_read(
    registry: SourceRegistry, account: FakeAccount, checker: WebhookCheck
) -> None:
    source, _ = await registry.create(SourceCreate(name="SendGrid", api_key=api_key()))
    account.webhooks.add("https://other.example.com/a", signed=True, enabled=True, **EVERY_EVENT)
    mine = account.webhooks.add(
        webhook_url(registry, source), signed=True, enabled=False, **EVERY_EVENT
    )
    # Repair asked for, but a webhook set up by hand is never changed.
    await set_columns(
        registry.engine,
        source.id,
        webhook_verification_key=mine["public_key"],
        webhook_repair=True,
    )
    source = await registry.rows.get(source.id)
    before = copy.deepcopy(account.webhooks.webhooks)

    result = await checker.check(source)

    assert [(f.finding, f.repaired_at) for f in result.findings] == [("disabled", None)]
    assert account.webhooks.webhooks == before

    del account.webhooks.webhooks[mine["id"]]
    result = await checker.check(source)
    assert [f.finding for f in result.findings] == ["not_found"]
    assert "1 webhooks" in result.findings[0].detail


async def test_a_source_without_webhook_or_key_is_not_read(
    registry: SourceRegistry, account: FakeAccount, checker: WebhookCheck
) -> None:
    source, _ = await registry.create(SourceCreate(name="SendGrid", api_key=api_key()))

    assert (await checker.check(source)).findings == []
    assert account.stats_queries == []


async def test_a_sendgrid_error_is_check_failed_and_keeps_what_was_found(
    registry: SourceRegistry, account: FakeAccount, checker: WebhookCheck, clock: Clock
) -> None:
    source, hook = await managed_source(registry, account)
    await set_last_event(registry.engine, source.id, clock.moment - timedelta(days=2))
    _disable(account, hook)
    await checker.check(source)
    account.unavailable = True
    clock.moment += timedelta(hours=1)

    result = await checker.check(source)

    names = {f.finding: f for f in result.findings}
    assert set(names) == {"disabled", "check_failed", "silence_unchecked"}
    assert "503" in names["check_failed"].detail
    assert names["disabled"].last_seen_at < clock.moment  # kept, not seen again


# --- silence ----------------------------------------------------------------------------


async def test_silence_is_flagged_when_stats_show_mail_processed_after_the_last_event(
    registry: SourceRegistry, account: FakeAccount, checker: WebhookCheck, clock: Clock
) -> None:
    source, _ = await managed_source(registry, account)
    await set_last_event(registry.engine, source.id, clock.moment - timedelta(hours=16))
    account.daily_stats["2026-03-02"] = {"processed": 40, "delivered": 39}

    result = await checker.check(source)

    [silent] = result.findings
    assert silent.finding == "silent"
    assert "16 h" in silent.detail
    assert "processed 40 emails" in silent.detail
    assert account.stats_queries == [
        {"start_date": "2026-03-01", "end_date": "2026-03-02", "aggregated_by": "day"}
    ]
    assert gauge(source.id, "silent") == 1.0

    # An event arrives: no longer silent.
    await set_last_event(registry.engine, source.id, clock.moment - timedelta(minutes=5))
    clock.moment += timedelta(minutes=10)
    assert (await checker.check(source)).findings == []
    assert gauge(source.id, "silent") == 0.0


@pytest.mark.parametrize(
    ("quiet", "daily"),
    [
        (timedelta(hours=2), {"2026-03-02": {"processed": 40}}),  # shorter than the alert
        (timedelta(hours=16), {}),  # SendGrid processed nothing
        (timedelta(hours=10), {"2026-03-02": {"processed": 40}}),  # only on the last event's day
    ],
    ids=["recent-events", "no-mail", "same-day"],
)
async def test_no_silence_without_a_long_quiet_and_mail_processed_after_it(
    registry: SourceRegistry,
    account: FakeAccount,
    checker: WebhookCheck,
    clock: Clock,
    quiet: timedelta,
    daily: dict[str, dict[str, int]],
) -> None:
    source, _ = await managed_source(registry, account)
    await set_last_event(registry.engine, source.id, clock.moment - quiet)
    account.daily_stats.update(daily)

    assert (await checker.check(source)).findings == []


async def test_without_the_stats_scope_silence_is_not_checked_and_says_so(
    registry: SourceRegistry, account: FakeAccount, checker: WebhookCheck, clock: Clock
) -> None:
    source, _ = await managed_source(registry, account)
    await set_last_event(registry.engine, source.id, clock.moment - timedelta(days=2))
    account.daily_stats["2026-03-02"] = {"processed": 40}
    account.forbidden.add("/v3/stats")

    result = await checker.check(source)

    [unchecked] = result.findings
    assert unchecked.finding == "silence_unchecked"
    assert "stats.read" in unchecked.detail


async def test_two_checks_finding_the_same_new_drift_at_once_record_it_once(
    registry: SourceRegistry, engine: AsyncEngine, account: FakeAccount
) -> None:
    """A sync run's check and `GET .../webhook/check` can race to insert one finding: the one
    that loses writes again and finds it stored, so it is new (logged) once, and neither fails."""
    source, _ = await registry.create(SourceCreate(name="SendGrid", api_key=api_key()))
    moment = datetime(2026, 12, 1, 12, tzinfo=UTC)
    for round_ in range(5):
        name = FINDINGS[round_]
        results = await asyncio.gather(
            *(
                webhook_findings_table.record(
                    engine, source.id, [Finding(name, "seen")], moment + timedelta(minutes=round_)
                )
                for _ in range(4)
            )
        )
        assert sum(new == [name] for _, new in results) == 1
        assert sum(new == [] for _, new in results) == 3
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    sa.select(webhook_findings.c.finding).where(
                        webhook_findings.c.source_id == source.id
                    )
                )
            ).scalars()
            assert list(stored) == [name]
