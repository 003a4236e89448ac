"""`/sources/{id}/backfills` on the ingest service, relayed to the real sync service in
process: start (202, then 409 while running), list, read one; a range refused with why; the
admin token; and `sendgrid-source backfill` with its live progress."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import respx
from fastapi import FastAPI
from typer.testing import CliRunner

from sendgrid_source.cli import app as cli_app
from shared.settings import Settings, get_settings
from sync_service.app import create_app as create_sync_app
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.reconciliation_helpers import day_traffic
from tests.sync.backfill.conftest import JSON, in_email_logs, recent

SYNC_URL = "http://sync.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"SYNC_URL": SYNC_URL})


@pytest.fixture
async def sync_app(settings: Settings, sendgrid: respx.MockRouter) -> AsyncIterator[FastAPI]:
    app = create_sync_app(settings, schedule=False)
    transport = httpx.ASGITransport(app=app)

    async def to_sync_service(request: httpx.Request) -> httpx.Response:
        response = await transport.handle_async_request(request)
        await response.aread()
        return response

    sendgrid.route(host="sync.test").mock(side_effect=to_sync_service)
    async with app.router.lifespan_context(app):
        yield app


def events() -> list[JSON]:
    return day_traffic(recent(30), {"delivered": 5, "opens": 3}, tag="api", span=timedelta(hours=2))


async def test_start_then_follow_a_backfill_through_the_ingest_service(
    ingest: httpx.AsyncClient, account: FakeAccount, sync_app: FastAPI, webhook_source: JSON
) -> None:
    traffic = events()
    in_email_logs(account, traffic, created_at=recent(31))
    path = f"/sources/{webhook_source['id']}/backfills"

    started = await ingest.post(path, json={"days": 3})
    busy = await ingest.post(path)
    await sync_app.state.backfill_service.wait_for_background()

    assert started.status_code == 202, started.text
    body = started.json()
    assert body["resumed"] is False
    since, until = (body["since"], body["until"])
    assert busy.status_code == 409
    assert busy.json()["error"]["message"] == ("a backfill of source 'SendGrid' is already running")
    one = await ingest.get(f"{path}/{body['backfill_id']}")
    assert one.status_code == 200, one.text
    record = one.json()
    assert (record["status"], record["kind"], record["trigger"]) == (
        "succeeded",
        "backfill",
        "manual",
    )
    assert (record["since"], record["until"], record["reached"]) == (since, until, until)
    assert (record["progress"], record["events_stored"], record["duplicates"]) == (
        1.0,
        len(traffic),
        0,
    )
    listed = await ingest.get(path)
    assert [b["id"] for b in listed.json()["backfills"]] == [body["backfill_id"]]


async def test_a_range_sendgrid_does_not_keep_is_refused_with_why(
    ingest: httpx.AsyncClient, sync_app: FastAPI, webhook_source: JSON
) -> None:
    path = f"/sources/{webhook_source['id']}/backfills"

    too_old = await ingest.post(
        path, json={"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}
    )
    reversed_range = await ingest.post(
        path, json={"since": recent(1).isoformat(), "until": recent(5).isoformat()}
    )
    no_zone = await ingest.post(path, json={"since": "2026-11-20T00:00:00"})
    too_many_days = await ingest.post(path, json={"days": 31})

    assert too_old.status_code == 400
    assert "SendGrid keeps 30 days of events" in too_old.json()["error"]["message"]
    assert reversed_range.status_code == 400
    assert "must be before until" in reversed_range.json()["error"]["message"]
    assert no_zone.status_code == 422
    assert "give a time zone" in no_zone.text
    assert too_many_days.status_code == 422


async def test_backfills_need_the_token_and_a_known_source(
    ingest: httpx.AsyncClient, sync_app: FastAPI, webhook_source: JSON
) -> None:
    path = f"/sources/{webhook_source['id']}/backfills"
    assert (await ingest.get(path, headers={"Authorization": ""})).status_code == 401
    assert (await ingest.post(path, headers={"Authorization": ""})).status_code == 401
    unknown = await ingest.get("/sources/no-such-source/backfills")
    assert unknown.status_code == 404
    missing = await ingest.get(f"{path}/no-such-backfill")
    assert missing.status_code == 404
    assert (
        missing.json()["error"]["message"] == "no backfill 'no-such-backfill' of source 'SendGrid'"
    )
    direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=sync_app), base_url=SYNC_URL)
    async with direct:
        assert (await direct.post(path)).status_code == 401


def test_the_cli_backfills_in_the_foreground_and_shows_the_outcome(
    settings: Settings,
    account: FakeAccount,
    webhook_source: JSON,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    traffic = events()
    in_email_logs(account, traffic, created_at=recent(31))
    # The command reads its configuration from the environment: the test's own.
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    for name in ("DATABASE_URL", "DATA_DIR", "SENDGRID_API_URL", "PUBLIC_URL"):
        monkeypatch.setenv(name, str(getattr(settings, name)))
    for name in ("SECRET_KEY", "ADMIN_TOKEN"):
        monkeypatch.setenv(name, getattr(settings, name).get_secret_value())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["backfill", webhook_source["name"], "--days", "2"])
        refused = CliRunner().invoke(cli_app, ["backfill", webhook_source["name"], "--days", "31"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert re.search(r"backfill [0-9a-f-]{36}: succeeded", result.output)
    assert re.search(rf"│ events stored\s+│ {len(traffic)}\s+│", result.output)
    assert re.search(r"│ duplicates \(already stored\)\s+│ 0\s+│", result.output)
    assert refused.exit_code == 2
    assert "less than or equal to 30" in refused.output
