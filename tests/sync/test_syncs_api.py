"""The sync service's HTTP API: start a run (202/409), list runs, admin token required."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from shared.settings import Settings
from shared.source_rows import Source
from sync_service.app import create_app
from sync_service.service import SyncService
from tests.conftest import ADMIN_TOKEN
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.sync.fakes import FakeTime


@pytest.fixture
async def sync_app(settings: Settings, sync_service: SyncService) -> AsyncIterator[FastAPI]:
    app = create_app(settings, schedule=False)
    async with app.router.lifespan_context(app):
        # Runs use the test's fake time instead of really sleeping between retries.
        app.state.sync_service = sync_service
        yield app


@pytest.fixture
async def api(sync_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sync_app),
        base_url="http://sync.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client


async def test_start_a_sync_then_read_it_in_the_ledger(
    api: httpx.AsyncClient, account: FakeAccount, source: Source, sync_service: SyncService
) -> None:
    account.add_list("ca7a3796-e8a8-4029-9ccb-df8937940562", "Newsletter", 100)

    started = await api.post(f"/sources/{source.id}/syncs")

    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    await sync_service.wait_for_background()
    listed = await api.get(f"/sources/{source.id}/syncs")
    assert listed.status_code == 200
    [run] = listed.json()["runs"]
    assert run["id"] == run_id
    assert run["trigger"] == "manual"
    assert run["status"] == "succeeded"
    assert run["finished_at"] is not None
    collections = {c["collection"]: c for c in run["collections"]}
    assert collections["lists"]["rows_upserted"] == 1
    assert collections["lists"]["api"] == "marketing"
    assert collections["segments"]["status"] == "empty"
    assert collections["segments"]["message"].startswith("the account has no segments")


async def test_a_second_start_while_running_is_409(
    api: httpx.AsyncClient,
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    fake_time: FakeTime,
) -> None:
    account.unavailable = True
    fake_time.gate = asyncio.Event()
    first = await api.post(f"/sources/{source.id}/syncs")
    await fake_time.held.wait()  # the run is now waiting to retry SendGrid

    second = await api.post(f"/sources/{source.id}/syncs")

    assert first.status_code == 202
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "conflict"
    running = (await api.get(f"/sources/{source.id}/syncs")).json()["runs"]
    assert [(r["id"], r["status"]) for r in running] == [(first.json()["run_id"], "running")]
    account.unavailable = False
    fake_time.gate.set()
    await sync_service.wait_for_background()


async def test_runs_are_newest_first(
    api: httpx.AsyncClient, account: FakeAccount, source: Source, sync_service: SyncService
) -> None:
    ids = []
    for _ in range(3):
        ids.append((await api.post(f"/sources/{source.id}/syncs")).json()["run_id"])
        await sync_service.wait_for_background()

    runs = (await api.get(f"/sources/{source.id}/syncs", params={"limit": 2})).json()["runs"]

    assert [run["id"] for run in runs] == ids[::-1][:2]


async def test_unknown_source_is_404_and_the_admin_token_is_required(
    api: httpx.AsyncClient, sync_app: FastAPI, source: Source
) -> None:
    assert (await api.post("/sources/no-such-source/syncs")).status_code == 404
    assert (await api.get("/sources/no-such-source/syncs")).status_code == 404
    transport = httpx.ASGITransport(app=sync_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sync.test") as anonymous:
        refused = await anonymous.post(f"/sources/{source.id}/syncs")
        wrong = await anonymous.get(
            f"/sources/{source.id}/syncs", headers={"Authorization": "Bearer nope"}
        )
    assert (refused.status_code, wrong.status_code) == (401, 401)
