"""The suppression lists, unsubscribe groups and their members, synced end to end against the
fake account on SQLite and PostgreSQL: first sync, the incremental window (its query string),
the overlap, the complete read that finds removals, a 403 on one list, and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared.source_rows import Source
from shared.tables import source_tables, sync_cursors
from sync_service.runner import RunOutcome, SyncDependencies
from sync_service.service import SyncService
from sync_service.suppression_readers import OVERLAP, SUPPRESSION_PAGE_SIZE
from tests.fake_sendgrid.respx_route import FakeAccount

# Collection -> the list's name in the fake (and in SendGrid's path).
LISTS = {
    "suppression_bounces": "bounces",
    "suppression_blocks": "blocks",
    "suppression_spam_reports": "spam_reports",
    "suppression_invalid_emails": "invalid_emails",
    "suppression_global_unsubscribes": "unsubscribes",
}
JAN_1 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())


async def sync(service: SyncService, source: Source) -> RunOutcome:
    outcome = await service.run(source.id, "manual")
    assert outcome is not None
    return outcome


def result(outcome: RunOutcome, collection: str) -> tuple[str, int, int]:
    [found] = [r for r in outcome.collections if r.collection == collection]
    return found.status, found.rows_upserted, found.rows_deleted


async def stored(deps: SyncDependencies, source: Source, table: str) -> dict[Any, dict[str, Any]]:
    target = source_tables(source.schema_name).objects[table]
    keys = [column.name for column in target.primary_key.columns]
    async with deps.engine.connect() as connection:
        rows = (await connection.execute(sa.select(target))).all()
    return {
        tuple(row._mapping[k] for k in keys) if len(keys) > 1 else row._mapping[keys[0]]: dict(
            row._mapping
        )
        for row in rows
    }


async def age_full_listing(deps: SyncDependencies, source: Source, by: timedelta) -> None:
    """As if the last complete read of every list had been `by` earlier."""
    async with deps.engine.begin() as connection:
        rows = (
            await connection.execute(
                sa.select(sync_cursors).where(sync_cursors.c.full_listing_at.is_not(None))
            )
        ).all()
        for row in rows:
            await connection.execute(
                sync_cursors.update()
                .where(
                    sync_cursors.c.source_id == row.source_id,
                    sync_cursors.c.collection == row.collection,
                )
                .values(full_listing_at=row.full_listing_at - by)
            )


@pytest.mark.parametrize("collection", list(LISTS))
async def test_a_suppression_list_is_read_completely_then_by_its_new_window(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    collection: str,
) -> None:
    kind = LISTS[collection]
    path = f"/v3/suppression/{kind}"
    account.add_suppression(kind, "old@example.com", JAN_1)
    first = await sync(sync_service, source)

    assert result(first, collection) == ("succeeded", 1, 0)
    row = (await stored(sync_deps, source, collection))["old@example.com"]
    assert row["created"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert row["raw"]["email"] == "old@example.com"
    [first_query] = account.queries_to(path)
    assert "start_time" not in first_query  # the first read is complete
    assert first_query["limit"] == str(SUPPRESSION_PAGE_SIZE)
    read_to = int(first_query["end_time"])

    new_created = read_to - 10
    account.add_suppression(kind, "new@example.com", new_created)
    second = await sync(sync_service, source)

    [_, second_query] = account.queries_to(path)
    # Only the window since the last read, less the overlap, both bounds inclusive.
    assert int(second_query["start_time"]) == read_to - int(OVERLAP.total_seconds())
    assert int(second_query["end_time"]) >= read_to
    status, upserted, deleted = result(second, collection)
    assert (status, upserted, deleted) == ("succeeded", 1, 0)
    message = next(r.message for r in second.collections if r.collection == collection)
    assert message is not None
    assert "addresses added since" in message
    assert set(await stored(sync_deps, source, collection)) == {
        "old@example.com",
        "new@example.com",
    }


async def test_the_overlap_reads_a_boundary_address_again_without_storing_it_twice(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    # Added this very second: at the upper bound of the first read's window, and inside the
    # overlap of the next one.
    edge = int(datetime.now(UTC).timestamp())
    account.add_suppression("bounces", "edge@example.com", edge)

    first = await sync(sync_service, source)
    second = await sync(sync_service, source)

    [first_query, second_query] = account.queries_to("/v3/suppression/bounces")
    assert int(first_query["end_time"]) >= edge
    assert int(second_query["start_time"]) <= edge  # read again
    assert result(first, "suppression_bounces")[1] == 1
    [message] = [r.message for r in second.collections if r.collection == "suppression_bounces"]
    assert message is not None
    assert "0 new, 0 changed, 1 unchanged" in message
    rows = await stored(sync_deps, source, "suppression_bounces")
    assert list(rows) == ["edge@example.com"]


async def test_a_complete_read_a_day_later_marks_removed_addresses_deleted(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    account.add_suppression("blocks", "stays@example.com", JAN_1)
    account.add_suppression("blocks", "expires@example.com", JAN_1 + 60)
    await sync(sync_service, source)
    account.remove_suppression("blocks", "expires@example.com")

    incremental = await sync(sync_service, source)
    # An incremental read cannot see a removal, and marks nothing.
    assert result(incremental, "suppression_blocks")[2] == 0
    await age_full_listing(sync_deps, source, timedelta(hours=25))
    complete = await sync(sync_service, source)

    assert "start_time" not in account.queries_to("/v3/suppression/blocks")[-1]
    assert result(complete, "suppression_blocks") == ("succeeded", 1, 1)
    rows = await stored(sync_deps, source, "suppression_blocks")
    assert rows["stays@example.com"]["deleted_at"] is None
    assert rows["expires@example.com"]["deleted_at"] is not None


async def test_a_403_on_one_list_leaves_the_others_synced(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    account.add_suppression("bounces", "a@example.com", JAN_1)
    account.add_suppression("spam_reports", "b@example.com", JAN_1, ip="10.0.0.1")
    account.forbidden = {"/v3/suppression/bounces"}

    outcome = await sync(sync_service, source)

    assert outcome.status == "partial"
    [bounces] = [r for r in outcome.collections if r.collection == "suppression_bounces"]
    assert bounces.status == "forbidden"
    assert bounces.message is not None
    assert "suppression.bounces.read" in bounces.message
    assert result(outcome, "suppression_spam_reports") == ("succeeded", 1, 0)
    spam = await stored(sync_deps, source, "suppression_spam_reports")
    assert spam["b@example.com"]["ip"] == "10.0.0.1"
    # A refused list keeps no cursor: the next run reads it completely.
    account.forbidden = set()
    await sync(sync_service, source)
    assert "start_time" not in account.queries_to("/v3/suppression/bounces")[-1]


async def test_full_pages_are_followed_until_a_short_one(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    total = 2 * SUPPRESSION_PAGE_SIZE + 3
    for n in range(total):
        account.add_suppression("invalid_emails", f"user{n}@example.com", JAN_1 + n)

    outcome = await sync(sync_service, source)

    assert result(outcome, "suppression_invalid_emails") == ("succeeded", total, 0)
    offsets = [q["offset"] for q in account.queries_to("/v3/suppression/invalid_emails")]
    assert offsets == ["0", str(SUPPRESSION_PAGE_SIZE), str(2 * SUPPRESSION_PAGE_SIZE)]
    assert len(await stored(sync_deps, source, "suppression_invalid_emails")) == total


async def test_groups_and_their_members_follow_the_account(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    account.add_group(101, "Newsletters", ["a@example.com", "b@example.com"])
    account.add_group(102, "Offers", ["b@example.com"])
    first = await sync(sync_service, source)

    assert result(first, "suppression_groups") == ("succeeded", 2, 0)
    assert result(first, "suppression_group_members") == ("succeeded", 3, 0)
    groups = await stored(sync_deps, source, "suppression_groups")
    assert groups[101]["name"] == "Newsletters"
    assert groups[101]["unsubscribes"] == 2
    members = await stored(sync_deps, source, "suppression_group_members")
    assert set(members) == {(101, "a@example.com"), (101, "b@example.com"), (102, "b@example.com")}

    # A member leaves one group; the other group is deleted with its members.
    account.add_group(101, "Newsletters", ["a@example.com"])
    account.remove_group(102)
    second = await sync(sync_service, source)

    assert result(second, "suppression_groups")[2] == 1
    assert result(second, "suppression_group_members")[2] == 2
    groups = await stored(sync_deps, source, "suppression_groups")
    assert groups[102]["deleted_at"] is not None
    members = await stored(sync_deps, source, "suppression_group_members")
    live = {key for key, row in members.items() if row["deleted_at"] is None}
    assert live == {(101, "a@example.com")}


async def test_members_are_forbidden_alone_when_their_scope_is_missing(
    account: FakeAccount, source: Source, sync_service: SyncService
) -> None:
    account.add_group(101, "Newsletters", ["a@example.com"])
    account.forbidden = {"/v3/asm/groups/101/suppressions"}

    outcome = await sync(sync_service, source)

    assert result(outcome, "suppression_groups") == ("succeeded", 1, 0)
    [members] = [r for r in outcome.collections if r.collection == "suppression_group_members"]
    assert members.status == "forbidden"
    assert members.message is not None
    assert "asm.groups.suppressions.read" in members.message
