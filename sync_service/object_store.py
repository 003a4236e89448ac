"""Where the sync's object tables live: the one step of a run that depends on it.

An `ObjectStore` opens a `Listing` (one complete or partial read of a collection written page
by page, then its stored objects it did not contain marked deleted) and reads back the raw
objects a reader asks for. `SqlObjectStore` is the control database's own schema (PostgreSQL
and SQLite: `listing_writer.ListingWriter`); `clickhouse_objects.ClickHouseObjects` is a
ClickHouse warehouse. `object_store` chooses from the settings, in one place. The run ledger,
the cursors and the claims stay on DATABASE_URL whatever the warehouse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clickhouse import ClickHouse
from shared.settings import Settings
from sync_service.clickhouse_objects import ClickHouseObjects
from sync_service.listing_writer import ListingCounts, ListingWriter, copy_connection
from sync_service.object_records import Records, Row


class Listing(Protocol):
    """One listing of an object table, written page by page."""

    counts: ListingCounts

    async def write(self, page: Sequence[Row] | Records) -> int:
        """Write one page; returns how many distinct objects it held. Returns once the page
        is durably stored, so whatever the caller records after it on DATABASE_URL (the
        ledger, a cursor) never runs ahead of the objects."""
        ...

    async def mark_missing_deleted(self, now: datetime) -> int:
        """Set `deleted_at` on the stored objects the complete listing did not contain;
        returns how many."""
        ...


class ObjectStore(Protocol):
    def listing(self, table: sa.Table, started: datetime) -> AbstractAsyncContextManager[Listing]:
        """A listing of `table` (a source's object table) started at `started`, the
        `synced_at` of every row it writes."""
        ...

    async def stored_raw(self, table: sa.Table, api: str | None) -> dict[str, Any]:
        """The raw objects of `table` from `api`, not deleted, by their (one-column) key."""
        ...

    async def close(self) -> None: ...


class SqlObjectStore:
    """The object tables of the control database's source schemas."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextlib.asynccontextmanager
    async def listing(self, table: sa.Table, started: datetime) -> AsyncIterator[Listing]:
        async with (
            self.engine.connect() as connection,
            copy_connection(self.engine) as copier,
            ListingWriter(connection, table, started, copier) as listing,
        ):
            yield listing

    async def stored_raw(self, table: sa.Table, api: str | None) -> dict[str, Any]:
        key = next(iter(table.primary_key.columns))
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                sa.select(key, table.c.raw).where(table.c.api == api, table.c.deleted_at.is_(None))
            )
            return {str(row[0]): row[1] for row in rows}

    async def close(self) -> None:
        return None  # the engine is the caller's


def object_store(settings: Settings, engine: AsyncEngine) -> ObjectStore:
    """The object tables' warehouse `settings` names; `engine` is the control database's."""
    url = settings.clickhouse_url
    if url is not None:
        # A connection of its own, one client per collection written at once.
        return ClickHouseObjects(ClickHouse(url, size=settings.SYNC_CONCURRENCY))
    return SqlObjectStore(engine)
