"""Whole sync runs against a fake account, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.source_rows import Source
from shared.tables import source_tables
from sync_service.ledger import list_runs
from sync_service.runner import RunOutcome, SyncDependencies
from sync_service.service import SyncService
from tests.fake_sendgrid.contacts import Contact
from tests.fake_sendgrid.respx_route import FakeAccount

LIST_A = "ca7a3796-e8a8-4029-9ccb-df8937940562"
LIST_B = "f2fe66a1-43f3-4e3a-87b1-c6a600d805f0"
SEGMENT = "dad84de3-bec4-4e04-b132-2cbfd4bb3789"
SEND = "27c21bbf-a12c-440b-b8bf-c526975328ca"
ALICE = Contact(
    "47d23ab0-d895-4359-a0d1-ffc7a6fc7e70",
    "alice@example.com",
    "Alice",
    {"num_orders": "3", "dob": "05/01/1990", "favourite": "tea"},
)
BOB = Contact("5a1e9e0d-6c1f-4b7e-8d3a-0f6b2f1c9e11", "bob@example.com", "Bob")
CAROL = Contact("9b0c3f8e-2a4d-4f5e-8c7b-1d2e3f4a5b6c", "carol@example.com", "Carol")


def fill(account: FakeAccount) -> None:
    account.add_list(LIST_A, "Newsletter", 100)
    account.add_list(LIST_B, "Customers", 2)
    account.add_segment(SEGMENT, "Engaged", 7, [LIST_A])
    account.contacts = [ALICE, BOB, CAROL]
    account.custom_fields = [
        {"id": "w1", "name": "num_orders", "field_type": "Number"},
        {"id": "w2", "name": "dob", "field_type": "Date"},
        {"id": "w3", "name": "favourite", "field_type": "Text"},
    ]
    account.add_single_send(SEND, "November news", [LIST_A])


async def sync(service: SyncService, source: Source) -> RunOutcome:
    outcome = await service.run(source.id, "manual")
    assert outcome is not None
    return outcome


async def rows(deps: SyncDependencies, source: Source, table: str) -> dict[str, dict[str, Any]]:
    tables = source_tables(source.schema_name)
    target = tables.objects[table]
    key = next(iter(target.primary_key.columns)).name
    async with deps.engine.connect() as connection:
        result = await connection.execute(sa.select(target))
        return {row._mapping[key]: dict(row._mapping) for row in result}


# The collections of the first release, which both Marketing Campaigns APIs fill (the
# others: tests/sync/test_collections_*.py).
FIRST_FOUR = ("lists", "segments", "recipients", "campaigns")


def by_collection(outcome: RunOutcome) -> dict[str, tuple[str, str | None, int, int]]:
    """The first four collections' status, API and counts."""
    return {
        r.collection: (r.status, r.api, r.rows_upserted, r.rows_deleted)
        for r in outcome.collections
        if r.collection in FIRST_FOUR
    }


async def test_a_sync_fills_the_four_tables_with_typed_columns(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)

    outcome = await sync(sync_service, source)

    assert outcome.status == "succeeded", outcome
    assert by_collection(outcome) == {
        "lists": ("succeeded", "marketing", 2, 0),
        "segments": ("succeeded", "marketing", 1, 0),
        "recipients": ("succeeded", "marketing", 3, 0),
        "campaigns": ("succeeded", "marketing", 1, 0),
    }
    assert account.page_size_seen == ["1000"]
    lists = await rows(sync_deps, source, "lists")
    assert lists[LIST_A]["name"] == "Newsletter"
    assert lists[LIST_A]["contact_count"] == 100
    assert lists[LIST_A]["raw"]["_metadata"]["self"].endswith(LIST_A)
    segment = (await rows(sync_deps, source, "segments"))[SEGMENT]
    assert segment["parent_list_ids"] == [LIST_A]
    assert segment["query_validation"] == "VALID"
    assert segment["updated_at"].year == 2026
    recipients = await rows(sync_deps, source, "recipients")
    alice = recipients[ALICE.contact_id]
    assert alice["email"] == "alice@example.com"
    assert alice["address_line_1"] == "street address, P.O. box"
    assert alice["alternate_emails"] == ["a@x.example", "b@x.example"]
    assert alice["custom_fields"] == {"num_orders": 3, "dob": "1990-05-01", "favourite": "tea"}
    assert alice["raw"]["contact_id"] == ALICE.contact_id
    assert alice["deleted_at"] is None
    assert alice["synced_at"] is not None
    campaign = (await rows(sync_deps, source, "campaigns"))[SEND]
    # From the detail endpoint: the list of single sends has none of these.
    assert campaign["subject"] == "November news: this month's news"
    assert campaign["sender_id"] == 124451
    assert campaign["send_to"] == {"list_ids": [LIST_A], "segment_ids": [], "all": False}
    assert campaign["status"] == "triggered"
    assert campaign["categories"] == ["newsletter"]


async def test_a_list_whose_count_changes_is_updated_in_place(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    await sync(sync_service, source)
    account.lists[0]["contact_count"] = 200

    await sync(sync_service, source)

    lists = await rows(sync_deps, source, "lists")
    assert len(lists) == 2
    assert lists[LIST_A]["contact_count"] == 200
    assert lists[LIST_B]["contact_count"] == 2


async def test_a_resync_writes_only_the_objects_that_changed(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    await sync(sync_service, source)
    before = {table: await rows(sync_deps, source, table) for table in ("lists", "recipients")}
    account.lists[0]["contact_count"] = 200
    account.contacts = [ALICE, BOB, Contact(CAROL.contact_id, CAROL.email, "Caroline")]
    # A field's type changed: the export's values are the same, their typed column is not.
    account.custom_fields[0] = {"id": "w1", "name": "num_orders", "field_type": "Text"}

    second = await sync(sync_service, source)

    messages = {r.collection: r.message for r in second.collections}
    assert "(0 new, 1 changed, 1 unchanged)" in (messages["lists"] or "")
    assert "(0 new, 2 changed, 1 unchanged)" in (messages["recipients"] or "")
    assert by_collection(second)["recipients"] == ("succeeded", "marketing", 3, 0)
    lists = await rows(sync_deps, source, "lists")
    assert lists[LIST_A]["contact_count"] == 200
    assert lists[LIST_A]["synced_at"] > before["lists"][LIST_A]["synced_at"]
    assert lists[LIST_B] == before["lists"][LIST_B]  # not written at all
    recipients = await rows(sync_deps, source, "recipients")
    assert recipients[CAROL.contact_id]["first_name"] == "Caroline"
    assert recipients[ALICE.contact_id]["custom_fields"]["num_orders"] == "3"
    assert (
        recipients[ALICE.contact_id]["synced_at"]
        > before["recipients"][ALICE.contact_id]["synced_at"]
    )
    assert recipients[BOB.contact_id] == before["recipients"][BOB.contact_id]


async def test_a_contact_deleted_between_syncs_is_marked_and_cleared_when_back(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    await sync(sync_service, source)
    account.contacts = [ALICE, CAROL]

    second = await sync(sync_service, source)

    assert by_collection(second)["recipients"] == ("succeeded", "marketing", 2, 1)
    recipients = await rows(sync_deps, source, "recipients")
    assert recipients[BOB.contact_id]["deleted_at"] is not None
    assert recipients[ALICE.contact_id]["deleted_at"] is None
    assert recipients[CAROL.contact_id]["deleted_at"] is None

    account.contacts = [ALICE, BOB, CAROL]
    third = await sync(sync_service, source)

    assert by_collection(third)["recipients"] == ("succeeded", "marketing", 3, 0)
    assert (await rows(sync_deps, source, "recipients"))[BOB.contact_id]["deleted_at"] is None


async def test_a_failed_collection_marks_nothing_deleted(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    await sync(sync_service, source)
    account.contacts = []
    account.export_failure = "the export could not be generated"

    outcome = await sync(sync_service, source)

    assert outcome.status == "partial"
    recipients = next(r for r in outcome.collections if r.collection == "recipients")
    assert recipients.status == "failed"
    assert recipients.message is not None
    assert "the export could not be generated" in recipients.message
    assert "nothing was marked deleted" in recipients.message
    stored = await rows(sync_deps, source, "recipients")
    assert [row["deleted_at"] for row in stored.values()] == [None, None, None]


async def test_an_export_in_two_gzip_files_or_one_plain_file_gives_every_contact(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    account.export_files = 2

    await sync(sync_service, source)
    assert set(await rows(sync_deps, source, "recipients")) == {
        ALICE.contact_id,
        BOB.contact_id,
        CAROL.contact_id,
    }

    account.export_files, account.gzip_export = 1, False
    account.contacts = [ALICE]
    outcome = await sync(sync_service, source)
    assert by_collection(outcome)["recipients"] == ("succeeded", "marketing", 1, 2)


async def test_a_revoked_key_fails_the_run_with_the_reason(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    account.key_revoked = True

    outcome = await sync(sync_service, source)

    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("SendGrid rejected the API key")
    [run] = await list_runs(sync_deps.engine, source.id)
    assert run.status == "failed"
    assert run.error == outcome.error
    assert run.finished_at is not None


async def test_a_403_on_one_collection_marks_it_forbidden_and_the_rest_go_on(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    account.forbidden = {"/v3/marketing/segments/2.0"}

    outcome = await sync(sync_service, source)

    assert outcome.status == "partial"
    results = by_collection(outcome)
    assert results["segments"] == ("forbidden", "marketing", 0, 0)
    assert {results[name][0] for name in ("lists", "recipients", "campaigns")} == {"succeeded"}
    segments = next(r for r in outcome.collections if r.collection == "segments")
    assert segments.message is not None
    assert "marketing.read" in segments.message
    assert len(await rows(sync_deps, source, "recipients")) == 3


async def test_a_legacy_account_fills_the_same_tables_from_contactdb(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    account.make_legacy()

    outcome = await sync(sync_service, source)

    assert outcome.status == "succeeded", outcome
    assert by_collection(outcome) == {
        "lists": ("succeeded", "legacy", 1, 0),
        "segments": ("succeeded", "legacy", 1, 0),
        "recipients": ("succeeded", "legacy", 2, 0),
        "campaigns": ("succeeded", "legacy", 1, 0),
    }
    assert all(
        "Legacy Marketing Campaigns" in (r.message or "")
        for r in outcome.collections
        if r.collection in FIRST_FOUR
    )
    assert (await rows(sync_deps, source, "lists"))["1"]["contact_count"] == 2
    assert (await rows(sync_deps, source, "segments"))["1234"]["parent_list_ids"] == ["1"]
    recipient = (await rows(sync_deps, source, "recipients"))["am9uZXNAZXhhbXBsZS5jb20="]
    assert recipient["email"] == "jones@example.com"
    assert recipient["api"] == "legacy"
    assert recipient["custom_fields"] == {"age": None, "fname": "Example"}
    assert recipient["updated_at"].year == 2015
    campaign = (await rows(sync_deps, source, "campaigns"))["986724"]
    assert campaign["name"] == "March Newsletter"
    assert campaign["send_to"] == {"list_ids": [110, 124], "segment_ids": [110]}


async def test_an_account_without_marketing_data_says_so_in_words(
    account: FakeAccount, source: Source, sync_service: SyncService
) -> None:
    outcome = await sync(sync_service, source)

    assert outcome.status == "succeeded"
    # Daily statistics have a row for every day read, mail or not.
    assert {r.status for r in outcome.collections if r.collection != "stats_daily"} == {"empty"}
    messages = {r.collection: r.message or "" for r in outcome.collections}
    assert messages["lists"].startswith("the account has no contact lists")
    assert messages["recipients"].startswith("the account has no contacts")
    assert messages["campaigns"].startswith("the account has no single sends")


async def test_a_key_that_reaches_neither_api_marks_the_marketing_collections_forbidden(
    account: FakeAccount, source: Source, sync_service: SyncService
) -> None:
    account.forbidden = {"/v3/marketing/contacts/count"}
    account.add_verified_sender(1234, "Example Orders", "orders@example.com")

    outcome = await sync(sync_service, source)

    # Suppressions, templates and statistics do not depend on Marketing Campaigns.
    assert outcome.status == "partial"
    results = {r.collection: r for r in outcome.collections}
    assert {results[name].status for name in FIRST_FOUR} == {"forbidden"}
    assert all("marketing.read" in (results[name].message or "") for name in FIRST_FOUR)
    # What such an account has instead of Marketing Campaigns senders.
    assert (results["senders"].status, results["senders"].api) == ("succeeded", "verified")
    assert results["suppression_bounces"].status == "empty"


async def test_runs_are_listed_newest_first_with_their_collections(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    first = await sync(sync_service, source)
    account.forbidden = {"/v3/marketing/singlesends"}
    second = await sync(sync_service, source)

    runs = await list_runs(sync_deps.engine, source.id)

    assert [run.id for run in runs] == [second.run_id, first.run_id]
    assert [run.status for run in runs] == ["partial", "succeeded"]
    assert {c.collection: c.status for c in runs[0].collections}["campaigns"] == "forbidden"
    assert [c.rows_upserted for c in runs[1].collections if c.collection == "recipients"] == [3]
    assert all(run.trigger == "manual" for run in runs)


async def test_single_send_details_are_fetched_again_only_when_it_changed(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    fill(account)
    other = "2f6dec81-43b9-4c67-a890-3a38cb63b54a"
    account.add_single_send(other, "December news", [LIST_B])
    await sync(sync_service, source)
    assert sorted(account.details_fetched) == sorted([SEND, other])

    account.details_fetched.clear()
    account.single_sends[1]["updated_at"] = "2026-11-25T08:00:00Z"
    account.single_sends[1]["status"] = "scheduled"
    account.send_lists[other] = [LIST_A, LIST_B]
    await sync(sync_service, source)

    assert account.details_fetched == [other]
    campaigns = await rows(sync_deps, source, "campaigns")
    assert campaigns[other]["status"] == "scheduled"
    assert campaigns[other]["send_to"]["list_ids"] == [LIST_A, LIST_B]
    assert campaigns[SEND]["subject"] == "November news: this month's news"
    assert campaigns[SEND]["deleted_at"] is None
