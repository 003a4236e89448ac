"""Helpers for the reconciliation tests: a day's webhook traffic by SendGrid metric, stored
through the real receiver, a source collecting since a given moment, and a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from shared.reconciliation import Reconciliation
from shared.registry import SourceRegistry
from shared.tables import sources
from tests.webhook_helpers import Signer, body_of

# The event each metric of SendGrid's daily statistics counts (more-apis.md §3.4).
METRIC_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "processed": ("processed", {}),
    "delivered": ("delivered", {"response": "250 OK"}),
    "bounces": ("bounce", {"type": "bounce", "reason": "550 unknown user"}),
    "blocks": ("bounce", {"type": "blocked", "reason": "554 blocked"}),
    "bounce_drops": ("dropped", {"reason": "Bounced Address"}),
    "spam_report_drops": ("dropped", {"reason": "Spam Reporting Address"}),
    "unsubscribe_drops": ("dropped", {"reason": "Unsubscribed Address"}),
    "invalid_emails": ("dropped", {"reason": "Invalid"}),
    "opens": ("open", {"sg_machine_open": False}),
    "clicks": ("click", {"url": "https://example.com/"}),
    "spam_reports": ("spamreport", {}),
    "unsubscribes": ("unsubscribe", {}),
    "deferred": ("deferred", {"attempt": "1"}),
}

# A day's traffic: every compared metric, and events no metric counts.
DAY_COUNTS: dict[str, int] = {
    "processed": 12,
    "delivered": 10,
    "bounces": 2,
    "blocks": 1,
    "bounce_drops": 3,
    "spam_report_drops": 1,
    "unsubscribe_drops": 2,
    "invalid_emails": 1,
    "opens": 9,
    "clicks": 4,
    "spam_reports": 1,
    "unsubscribes": 2,
    "deferred": 5,
}
# Opens and clicks come from this many recipients (the unique metrics' stored counts).
RECIPIENTS = 3


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def event(kind: str, key: str, at: datetime, email: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "event": kind,
        "timestamp": int(at.timestamp()),
        "sg_event_id": f"{kind}-{key}",
        "sg_message_id": f"{key}.recvd-1",
        **extra,
    }


def day_traffic(
    start: datetime, counts: dict[str, int], tag: str = "a", span: timedelta = timedelta(days=1)
) -> list[dict[str, Any]]:
    """`counts[metric]` events of each metric spread over `span` from `start`, plus events
    SendGrid's statistics leave out (a drop for spam content, a group unsubscribe)."""
    events = []
    total = sum(counts.values()) + 2
    step = span / total
    n = 0
    for metric, count in counts.items():
        kind, extra = METRIC_EVENTS[metric]
        for i in range(count):
            email = f"user{i % RECIPIENTS}@example.com" if kind in ("open", "click") else None
            key = f"{tag}-{metric}-{i}"
            events.append(
                event(kind, key, start + n * step, email or f"{key}@example.com", **extra)
            )
            n += 1
    events.append(event("dropped", f"{tag}-spam-content", start + n * step, "x@example.com",
                        reason="Spam Content"))  # fmt: skip
    events.append(event("group_unsubscribe", f"{tag}-group", start + (n + 1) * step,
                        "y@example.com", asm_group_id=3))  # fmt: skip
    return events


def unique(counts: dict[str, int]) -> dict[str, int]:
    """The distinct recipients `day_traffic` gives the opens and clicks."""
    return {
        "unique_opens": min(counts.get("opens", 0), RECIPIENTS),
        "unique_clicks": min(counts.get("clicks", 0), RECIPIENTS),
    }


async def post_events(
    ingest: httpx.AsyncClient,
    path: str,
    events: list[dict[str, Any]],
    signer: Signer | None = None,
) -> None:
    body = body_of(events)
    headers = signer.headers(body) if signer is not None else {}
    response = await ingest.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0


async def collecting_since(app: FastAPI, source_id: str, moment: datetime) -> None:
    """The source as if registered at `moment`."""
    async with app.state.engine.begin() as connection:
        await connection.execute(
            sources.update().where(sources.c.id == source_id).values(created_at=moment)
        )


def reconciliation(app: FastAPI, clock: Clock, **settings: Any) -> Reconciliation:
    registry: SourceRegistry = app.state.registry
    return Reconciliation(
        registry.engine,
        registry.settings.model_copy(update=settings) if settings else registry.settings,
        registry.http,
        registry.secrets,
        registry.counts,
        now=clock,
    )


START = datetime(2026, 2, 20, tzinfo=UTC)
