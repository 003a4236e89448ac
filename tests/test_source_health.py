"""The health badge's rules (shared/source_health.py), one by one: no I/O, so each rule is
checked alone with the inputs the API would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.schemas import (
    CollectionRun,
    SourcePublic,
    SyncRun,
    WebhookFinding,
    WebhookSummary,
)
from shared.source_health import source_health
from shared.webhook_management import WebhookManagement

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def source(
    *,
    last_event_ago: timedelta | None = None,
    drift: list[WebhookFinding] | None = None,
    managed: bool = False,
    signed: bool = False,
    checked_ago: timedelta | None = None,
) -> SourcePublic:
    return SourcePublic(
        id="s1",
        name="SendGrid",
        schema_name="sendgrid",
        region="global",
        webhook_url="http://127.0.0.1:8000/webhooks/s1/t",
        webhook_signed=signed,
        api_key_fingerprint="abc",
        scopes=[],
        sync_interval_seconds=10800,
        stats_timezone="UTC",
        collections=["lists"],
        created_at=NOW - timedelta(days=3),
        updated_at=NOW - timedelta(days=3),
        webhook=WebhookSummary(
            last_event_at=None if last_event_ago is None else NOW - last_event_ago,
            events_last_24h={},
            events_stored=0,
            duplicates_absorbed=0,
            rejected=0,
            drift=drift or [],
        ),
        webhook_management=WebhookManagement(
            managed=managed,
            origin="created" if managed else None,
            signed=signed,
            repair=False,
            checked_at=None if checked_ago is None else NOW - checked_ago,
        ),
    )


def finding(name: str, *, repaired: bool = False) -> WebhookFinding:
    seen = NOW - timedelta(minutes=5)
    return WebhookFinding(
        finding=name,
        detail=f"{name} detail",
        first_seen_at=seen - timedelta(hours=1),
        last_seen_at=seen,
        repaired_at=seen if repaired else None,
    )


def run(status: str, error: str | None = None, **collections: Any) -> SyncRun:
    return SyncRun(
        id="r1",
        source_id="s1",
        trigger="scheduled",
        status=status,
        started_at=NOW - timedelta(hours=1),
        finished_at=NOW - timedelta(minutes=50),
        error=error,
        collections=[
            CollectionRun(
                collection=name,
                api="marketing",
                status=state,
                rows_upserted=0,
                rows_deleted=0,
                message=message,
                started_at=None,
                finished_at=None,
            )
            for name, (state, message) in collections.items()
        ],
    )


def texts(health: Any) -> list[tuple[str, str]]:
    return [(r.level, r.text) for r in health.reasons]


def test_events_in_the_last_hour_are_green() -> None:
    health = source_health(source(last_event_ago=timedelta(minutes=59)), None, NOW)
    assert health.status == "green"
    assert texts(health) == [("green", "events received in the last hour")]


def test_a_quiet_account_with_a_clean_check_is_green() -> None:
    quiet = source(last_event_ago=timedelta(hours=5), signed=True, checked_ago=timedelta(minutes=3))
    health = source_health(quiet, run("succeeded"), NOW)
    assert texts(health) == [
        ("green", "quiet: last event 5 h ago; the webhook check 3 min ago found it right")
    ]


def test_quiet_without_a_watched_or_checked_webhook_is_amber() -> None:
    unwatched = source_health(source(), None, NOW)
    assert texts(unwatched) == [
        (
            "amber",
            "no event received yet, and the webhook is not watched: configure it, or set its "
            "verification key",
        )
    ]
    unchecked = source_health(source(managed=True, last_event_ago=timedelta(days=2)), None, NOW)
    assert texts(unchecked) == [
        ("amber", "last event 2 d ago, and the webhook has not been checked yet")
    ]


def test_deleted_or_disabled_webhooks_are_red_other_findings_amber() -> None:
    for name in ("deleted", "disabled"):
        health = source_health(
            source(last_event_ago=timedelta(minutes=1), drift=[finding(name)]), None, NOW
        )
        assert health.status == "red"
        assert health.reasons[0].text == f"webhook {name}: {name} detail"
    for name in ("events_off", "key_rotated", "silent", "not_found", "check_failed"):
        health = source_health(
            source(last_event_ago=timedelta(minutes=1), drift=[finding(name)]), None, NOW
        )
        assert health.status == "amber", name
    # A quiet account whose check found something is not vouched for by that check.
    quiet = source(
        last_event_ago=timedelta(hours=3),
        managed=True,
        checked_ago=timedelta(minutes=1),
        drift=[finding("events_off")],
    )
    assert texts(source_health(quiet, None, NOW))[-1] == (
        "amber",
        "last event 3 h ago, and the webhook check found something wrong",
    )


def test_a_finding_repaired_by_the_check_that_found_it_is_not_a_problem() -> None:
    repaired = source(
        last_event_ago=timedelta(minutes=1),
        managed=True,
        drift=[finding("disabled", repaired=True)],
    )
    health = source_health(repaired, None, NOW)
    assert health.status == "green"
    assert ("green", "webhook disabled, repaired: disabled detail") in texts(health)


def test_the_last_finished_sync_failed_is_red_with_its_error() -> None:
    failed = run("failed", "SendGrid rejected the API key (revoked)")
    health = source_health(source(last_event_ago=timedelta(minutes=1)), failed, NOW)
    assert health.status == "red"
    assert health.reasons[0].text == "last sync failed: SendGrid rejected the API key (revoked)"


def test_a_partial_sync_is_amber_naming_the_collections_not_read() -> None:
    partial = run(
        "partial",
        lists=("succeeded", "4 new"),
        segments=("empty", None),
        suppressions=("skipped", "not in this plan"),
        recipients=("forbidden", "needs marketing.read"),
        campaigns=("failed", None),
    )
    health = source_health(source(last_event_ago=timedelta(minutes=1)), partial, NOW)
    assert health.status == "amber"
    assert health.reasons[0].text == (
        "last sync partial: recipients forbidden (needs marketing.read); campaigns failed"
    )


def test_runs_that_cannot_be_read_are_amber_saying_why() -> None:
    health = source_health(
        source(last_event_ago=timedelta(minutes=1)), None, NOW, runs_error="sync service down"
    )
    assert health.status == "amber"
    assert health.reasons[0].text == "sync runs unknown: sync service down"


def test_reasons_are_worst_first() -> None:
    health = source_health(source(drift=[finding("events_off")]), run("failed", "boom"), NOW)
    assert [r.level for r in health.reasons] == ["red", "amber", "amber"]
