"""Backfills against the fake SendGrid's Email Logs, beside the real receiver on the same
database: a source registered through the ingest service, its webhook path to post to, and the
sync service's backfill machinery with a clock that never waits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.clock import utcnow
from shared.source_rows import Source
from sync_service.backfill_ledger import BackfillRecord
from sync_service.backfill_service import BackfillService
from sync_service.runner import SyncDependencies
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.webhook_helpers import new_source

JSON = dict[str, Any]


@pytest.fixture
def backfills(sync_deps: SyncDependencies, ingest_app: FastAPI) -> BackfillService:
    """The sync service's backfills, beside a running ingest service on the same database."""
    return BackfillService(sync_deps)


@pytest.fixture
async def webhook_source(ingest: httpx.AsyncClient) -> JSON:
    """A source as the ingest service registers it, with its webhook `path`."""
    return await new_source(ingest)


async def source_row(sync_deps: SyncDependencies, created: JSON) -> Source:
    return await sync_deps.sources.get(created["id"])


def recent(hours_ago: float) -> datetime:
    """A moment within Email Logs' 30 days, on whole seconds (the listing's resolution)."""
    return (utcnow() - timedelta(hours=hours_ago)).replace(microsecond=0)


async def backfill(
    backfills: BackfillService,
    source: Source,
    since: datetime,
    until: datetime,
    **kw: Any,
) -> BackfillRecord:
    claim = await backfills.claim(source, "manual", since, until)
    assert claim is not None
    return await backfills.run(source, claim, **kw)


def in_email_logs(account: FakeAccount, events: list[JSON], created_at: datetime) -> None:
    """Each webhook event as one message of Email Logs (its own `sg_message_id`), created at
    `created_at`."""
    by_message: dict[str, list[JSON]] = {}
    for event in events:
        by_message.setdefault(event["sg_message_id"], []).append(event)
    for sg_message_id, message_events in by_message.items():
        account.email_logs.add(sg_message_id, message_events, created_at=created_at)
