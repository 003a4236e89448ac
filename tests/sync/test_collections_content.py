"""Templates and their versions, and senders, synced end to end against the fake account on
SQLite and PostgreSQL: both template generations, paging by the maximum page size, removed
objects marked deleted, a 403 for one collection, and the sender listing of each account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.source_rows import Source
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from sync_service.template_readers import TEMPLATES_PAGE_SIZE
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.fake_sendgrid.templates import template_version
from tests.sync.test_collections_suppressions import result, stored, sync

LEGACY_ID = "33feeff2-5069-43fe-8853-428651e5be79"
DYNAMIC_ID = "0c314114-a2b7-4523-8cbc-a293d7d19007"
VERSION_A = "8aefe0ee-f12b-4575-b5b7-c97e21cb36f3"
VERSION_B = "6e9c2f54-5d1f-4d0b-a4b0-4f0a41a2b4c5"


def fill_templates(account: FakeAccount) -> None:
    account.add_template(LEGACY_ID, "Receipt", "legacy", [template_version(VERSION_A, "v1")])
    account.add_template(
        DYNAMIC_ID,
        "Welcome",
        "dynamic",
        [
            template_version(VERSION_A, "first", active=0),
            template_version(VERSION_B, "second", subject="Welcome, {{name}}"),
        ],
        updated_at="2026-11-30 08:15:00",
    )


async def test_templates_of_both_generations_and_their_versions_are_synced(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill_templates(account)

    outcome = await sync(sync_service, source)

    assert result(outcome, "templates") == ("succeeded", 2, 0)
    assert result(outcome, "template_versions") == ("succeeded", 3, 0)
    # Without `generations`, SendGrid answers legacy templates alone.
    queries = account.queries_to("/v3/templates")
    assert {q["generations"] for q in queries} == {"legacy,dynamic"}
    assert {q["page_size"] for q in queries} == {str(TEMPLATES_PAGE_SIZE)}
    templates = await stored(sync_deps, source, "templates")
    assert templates[DYNAMIC_ID]["generation"] == "dynamic"
    assert templates[DYNAMIC_ID]["updated_at"] == datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    assert templates[DYNAMIC_ID]["raw"]["versions"][1]["id"] == VERSION_B
    versions = await stored(sync_deps, source, "template_versions")
    # One version id in two templates is two rows: the key is (template_id, id).
    assert set(versions) == {
        (LEGACY_ID, VERSION_A),
        (DYNAMIC_ID, VERSION_A),
        (DYNAMIC_ID, VERSION_B),
    }
    second = versions[(DYNAMIC_ID, VERSION_B)]
    assert (second["subject"], second["active"], second["editor"]) == (
        "Welcome, {{name}}",
        True,
        "code",
    )
    assert versions[(DYNAMIC_ID, VERSION_A)]["active"] is False


async def test_a_removed_template_and_a_removed_version_are_marked_deleted(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill_templates(account)
    await sync(sync_service, source)
    account.templates = [t for t in account.templates if t["id"] != LEGACY_ID]
    account.add_template(DYNAMIC_ID, "Welcome", "dynamic", [template_version(VERSION_B, "second")])

    outcome = await sync(sync_service, source)

    assert result(outcome, "templates")[2] == 1
    assert result(outcome, "template_versions")[2] == 2
    versions = await stored(sync_deps, source, "template_versions")
    live = {key for key, row in versions.items() if row["deleted_at"] is None}
    assert live == {(DYNAMIC_ID, VERSION_B)}


async def test_templates_are_paged_by_200_until_a_short_page(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    total = TEMPLATES_PAGE_SIZE + 7
    for n in range(total):
        account.add_template(str(uuid.UUID(int=n)), f"template {n}", "dynamic")

    outcome = await sync(sync_service, source)

    assert result(outcome, "templates") == ("succeeded", total, 0)
    assert result(outcome, "template_versions")[0] == "empty"
    # Two requests per collection: a full page, then the short one with the token.
    queries = account.queries_to("/v3/templates")
    assert len(queries) == 4
    assert sum("page_token" in q for q in queries) == 2
    assert len(await stored(sync_deps, source, "templates")) == total


async def test_a_403_on_templates_leaves_the_other_collections_synced(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill_templates(account)
    account.add_marketing_sender(1, "Example Orders", "orders@example.com")
    account.forbidden = {"/v3/templates"}

    outcome = await sync(sync_service, source)

    assert outcome.status == "partial"
    [templates] = [r for r in outcome.collections if r.collection == "templates"]
    assert templates.status == "forbidden"
    assert templates.message is not None
    assert "templates.read" in templates.message
    assert result(outcome, "senders") == ("succeeded", 1, 0)


async def test_marketing_senders_are_synced_with_their_addresses(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    account.add_marketing_sender(1, "Example Orders", "orders@example.com")
    account.add_marketing_sender(2, "Example News", "news@example.com", verified=False)
    await sync(sync_service, source)
    account.marketing_senders = account.marketing_senders[:1]

    outcome = await sync(sync_service, source)

    assert result(outcome, "senders") == ("succeeded", 1, 1)
    senders = await stored(sync_deps, source, "senders")
    orders = senders[1]
    assert (orders["from_email"], orders["from_name"], orders["api"]) == (
        "orders@example.com",
        "Example Orders",
        "marketing",
    )
    assert orders["reply_to_email"] == "support@example.com"
    assert orders["created_at"] == datetime.fromtimestamp(1449872165, UTC)
    assert senders[2]["verified"] is False
    assert senders[2]["deleted_at"] is not None


async def test_a_legacy_account_syncs_its_verified_senders_and_every_other_collection(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    account.make_legacy()
    account.add_verified_sender(1234, "Example Orders", "orders@example.com")
    fill_templates(account)
    account.add_suppression("bounces", "gone@example.com", 1_700_000_000)

    outcome = await sync(sync_service, source)

    assert outcome.status == "succeeded", outcome
    [senders] = [r for r in outcome.collections if r.collection == "senders"]
    assert (senders.status, senders.api, senders.rows_upserted) == ("succeeded", "verified", 1)
    assert (await stored(sync_deps, source, "senders"))[1234]["from_email"] == "orders@example.com"
    assert result(outcome, "templates")[:2] == ("succeeded", 2)
    assert result(outcome, "suppression_bounces")[:2] == ("succeeded", 1)
