"""Choosing a source's collections (POST/PATCH /sources), and the whole sync overlapping the
contacts export with a bounded number of requests in flight, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx
from fastapi import FastAPI

from shared.collections import NAMES
from shared.registry import SourceRegistry
from shared.schemas import SourceUpdate
from shared.settings import Settings
from shared.source_rows import Source
from sync_service.client import SendGridClient
from sync_service.ledger import list_runs
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.conftest import admin_client, api_key
from tests.fake_sendgrid.contacts import Contact
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.sync.fakes import FakeTime
from tests.sync.test_collections_suppressions import result, stored, sync

LIST_A = "ca7a3796-e8a8-4029-9ccb-df8937940562"
LIST_B = "f2fe66a1-43f3-4e3a-87b1-c6a600d805f0"
ALICE = Contact("47d23ab0-d895-4359-a0d1-ffc7a6fc7e70", "alice@example.com", "Alice")


async def choose(registry: SourceRegistry, source: Source, names: list[str] | None) -> Source:
    updated, _ = await registry.update(source.id, SourceUpdate(collections=names))
    return updated


async def test_a_collection_left_out_is_skipped_and_its_rows_are_never_marked_deleted(
    account: FakeAccount,
    source: Source,
    registry: SourceRegistry,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
) -> None:
    account.add_list(LIST_A, "Newsletter", 1)
    account.add_list(LIST_B, "Customers", 2)
    await sync(sync_service, source)
    await choose(registry, source, ["segments", "suppression_bounces"])
    account.lists = account.lists[:1]  # LIST_B is gone, but lists are no longer synced
    asked_before = len(account.queries)

    outcome = await sync(sync_service, source)

    assert outcome.status == "succeeded"
    statuses = {r.collection: r.status for r in outcome.collections}
    assert set(statuses) == set(NAMES)  # every collection has its ledger row
    assert statuses["segments"] == "empty"
    assert statuses["suppression_bounces"] == "succeeded"  # an incremental read, found none
    skipped = [r for r in outcome.collections if r.status == "skipped"]
    assert {r.collection for r in skipped} == set(NAMES) - {"segments", "suppression_bounces"}
    assert all(r.message == "not selected for this source" for r in skipped)
    lists = await stored(sync_deps, source, "lists")
    assert all(row["deleted_at"] is None for row in lists.values())
    # Nothing was asked of SendGrid for what was left out.
    asked = {path for path, _ in account.queries[asked_before:]}
    assert asked.isdisjoint({"/v3/marketing/lists", "/v3/marketing/contacts/exports"})
    assert "/v3/marketing/segments/2.0" in asked
    assert account.exports_started == 1  # the first sync's alone

    await choose(registry, source, None)  # every collection again
    again = await sync(sync_service, source)
    assert result(again, "lists") == ("succeeded", 1, 1)


async def test_collections_are_chosen_and_checked_through_the_api(
    ingest_app: FastAPI, sendgrid: respx.MockRouter
) -> None:
    async with admin_client(ingest_app) as client:
        created = await client.post(
            "/sources",
            json={"name": "SendGrid", "api_key": api_key(), "collections": ["templates", "lists"]},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["collections"] == ["lists", "templates"]  # in the catalogue's order

        refused = await client.patch(
            f"/sources/{body['id']}", json={"collections": ["lists", "bounces"]}
        )
        assert refused.status_code == 422
        message = refused.json()["error"]["message"]
        assert "'bounces'" in message
        assert "suppression_bounces" in message  # the valid names are listed

        everything = await client.patch(f"/sources/{body['id']}", json={"collections": None})
        assert everything.status_code == 200
        assert everything.json()["collections"] == list(NAMES)


async def test_registration_names_the_collections_each_missing_scope_costs(
    ingest_app: FastAPI, sendgrid: respx.MockRouter
) -> None:
    sendgrid.get("/v3/scopes").respond(
        200, json={"scopes": ["marketing.read", "suppression.read", "templates.read"]}
    )
    async with admin_client(ingest_app) as client:
        created = await client.post("/sources", json={"name": "SendGrid", "api_key": api_key()})
    warnings = "\n".join(created.json()["warnings"])
    assert "asm.groups.read scope: suppression_groups, suppression_group_members" in warnings
    assert "templates.versions.read scope: template_versions" in warnings
    assert "stats.read scope: stats_daily" in warnings
    assert "marketing.read" not in warnings
    assert "suppression.bounces.read" not in warnings  # granted by suppression.read


@pytest.fixture
def in_flight(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The most requests a sync had in flight at once, recorded as [current, most]."""
    counts = [0, 0]
    send = SendGridClient._send

    async def counted(
        self: SendGridClient, request: httpx.Request, *, stream: bool
    ) -> httpx.Response:
        counts[0] += 1
        counts[1] = max(counts[1], counts[0])
        try:
            await asyncio.sleep(0.002)  # long enough for the other collections to ask too
            return await send(self, request, stream=stream)
        finally:
            counts[0] -= 1

    monkeypatch.setattr(SendGridClient, "_send", counted)
    return counts


async def test_the_export_starts_first_and_every_collection_is_read_while_it_is_pending(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    settings: Settings,
    fake_time: FakeTime,
    in_flight: list[int],
) -> None:
    account.contacts = [ALICE]
    account.polls_before_ready = 3  # SendGrid takes a while to build the file
    for n in range(30):
        account.add_suppression("bounces", f"user{n}@example.com", 1_700_000_000 + n)
    account.add_group(101, "Newsletters", ["a@example.com"])
    # The export's polls wait here (nothing else in this run sleeps) until the test lets go.
    fake_time.gate = asyncio.Event()

    running = asyncio.create_task(sync(sync_service, source))
    await asyncio.wait_for(fake_time.held.wait(), 30)
    others = set(NAMES) - {"recipients"}
    recorded = await asyncio.wait_for(ledger_rows(sync_deps, source, len(others)), 60)
    fake_time.gate.set()
    outcome = await running

    assert outcome.status == "succeeded", outcome
    # Every other collection was read and recorded while the export was still pending.
    assert recorded == others
    paths = [path for path, _ in account.queries]
    started = paths.index("/v3/marketing/contacts/exports")
    # Nothing but the API probe and the field definitions came before the export's start.
    assert set(paths[:started]) <= {
        "/v3/marketing/contacts/count",
        "/v3/contactdb/recipients/count",
        "/v3/marketing/field_definitions",
    }
    assert 1 < in_flight[1] <= settings.SYNC_CONCURRENCY
    assert {r.collection for r in outcome.collections} == set(NAMES)
    assert result(outcome, "recipients") == ("succeeded", 1, 0)
    assert result(outcome, "suppression_bounces") == ("succeeded", 30, 0)


async def ledger_rows(deps: SyncDependencies, source: Source, count: int) -> set[str]:
    """The collections the running run has recorded, once there are `count` of them."""
    while True:
        [run] = await list_runs(deps.engine, source.id, limit=1)
        if len(run.collections) >= count:
            return {collection.collection for collection in run.collections}
        await asyncio.sleep(0.02)
