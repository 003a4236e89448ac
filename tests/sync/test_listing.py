"""A listing's pages written at the same time (new objects COPYed on their own connections
on PostgreSQL) store every object once, whichever page wins, and count it honestly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import warehouse
from shared.db import create_engine
from shared.tables import source_tables
from sync_service.listing_writer import ListingWriter, copy_connection
from sync_service.object_writes import ObjectWrites
from sync_service.records import list_row

SCHEMA = "listing_check"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await warehouse.create_source_schema(connection, SCHEMA)
    yield engine
    await engine.dispose()


def page(*items: tuple[str, str], at: datetime) -> list[dict[str, Any]]:
    return [list_row({"id": key, "name": name, "contact_count": 1}, at) for key, name in items]


async def stored(engine: AsyncEngine) -> dict[str, str]:
    table = source_tables(SCHEMA).objects["lists"]
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(table.c.id, table.c.name))
        return {key: name for key, name in rows}


async def write_pages(
    engine: AsyncEngine, pages: list[list[dict[str, Any]]], started: datetime
) -> ListingWriter:
    table = source_tables(SCHEMA).objects["lists"]
    async with (
        engine.connect() as connection,
        copy_connection(engine) as copier,
        ListingWriter(connection, table, started, copier) as listing,
    ):
        for rows in pages:
            await listing.write(rows)
        # Every object was written by this listing (`synced_at` is its start): none deleted.
        assert await listing.mark_missing_deleted(datetime.now(UTC)) == 0
    return listing


async def test_an_object_in_two_pages_of_one_listing_is_stored_once_with_the_later_content(
    engine: AsyncEngine,
) -> None:
    now = datetime.now(UTC)
    pages = [
        page(("a", "A"), ("b", "B"), at=now),
        page(("b", "B again"), ("c", "C"), at=now),
        page(("d", "D"), at=now),
    ]

    listing = await write_pages(engine, pages, now)

    assert await stored(engine) == {"a": "A", "b": "B again", "c": "C", "d": "D"}
    counts = listing.counts
    assert (counts.inserted, counts.updated, counts.unchanged) == (4, 1, 0)


# COPY connections are PostgreSQL's: these run on it alone.
@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_copy_refused_by_an_object_stored_meanwhile_is_merged_instead(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)

    # The pages' look-ups miss, as when a page is looked up while the page before it is
    # being COPYed: the second page's "b" then meets the first page's in its COPY.
    real_lookup = ObjectWrites.stored_hashes
    lookups: list[list[Any]] = []

    async def page_lookups_miss(self: ObjectWrites, keys: list[Any]) -> dict[Any, int | None]:
        lookups.append(keys)
        return {} if len(lookups) <= 2 else await real_lookup(self, keys)

    monkeypatch.setattr(ObjectWrites, "stored_hashes", page_lookups_miss)
    pages = [page(("a", "A"), ("b", "B"), at=now), page(("b", "B again"), ("c", "C"), at=now)]

    listing = await write_pages(engine, pages, now)

    assert await stored(engine) == {"a": "A", "b": "B again", "c": "C"}
    # The refused page's objects were merged: "b" changed, "c" was new.
    counts = listing.counts
    assert (counts.inserted, counts.updated, counts.unchanged) == (3, 1, 0)
    assert lookups[2] == [("b",), ("c",)]  # the merge's own look-up, for the counts


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_refused_page_still_lists_its_unchanged_objects_so_none_is_deleted(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = datetime.now(UTC)
    await write_pages(engine, [page(("z", "Z"), at=before)], before)
    now = datetime.now(UTC)
    real_lookup = ObjectWrites.stored_hashes
    lookups: list[list[Any]] = []

    async def b_looks_new_to_page_2(self: ObjectWrites, keys: list[Any]) -> dict[Any, int | None]:
        lookups.append(keys)
        found = await real_lookup(self, keys)
        if len(lookups) != 2:  # page 1's look-up, and the refused COPY's recount, see all
            return found
        return {key: found_hash for key, found_hash in found.items() if key != ("b",)}

    monkeypatch.setattr(ObjectWrites, "stored_hashes", b_looks_new_to_page_2)
    # Page 2's COPY is refused ("b" is page 1's), so "z", seen unchanged on page 2, is
    # listed when the refusal is settled; mark_missing_deleted (in write_pages) finds
    # nothing to delete.
    pages = [page(("a", "A"), ("b", "B"), at=now), page(("b", "B"), ("z", "Z"), at=now)]

    listing = await write_pages(engine, pages, now)

    assert await stored(engine) == {"a": "A", "b": "B", "z": "Z"}
    # "a" and "b" are new; page 2's "b" (recounted after its refused COPY) and "z" unchanged.
    counts = listing.counts
    assert (counts.inserted, counts.updated, counts.unchanged) == (2, 0, 2)
    assert lookups == [[("a",), ("b",)], [("b",), ("z",)], [("b",)]]
