"""Writing one complete listing of a collection, page by page, and then soft-deleting the
stored objects it no longer contains: `ListingWriter`, the sync's page loop.

Each page is one transaction. Its keys are looked up with their stored `content_hash`
first; then new objects take the backend's plain bulk insert, changed ones are merged, and
unchanged ones are not written at all (object_writes). The stored keys it saw are
remembered (listed_keys), so that once the listing is complete, stored objects it neither
wrote nor saw can be marked deleted. `synced_at` is when a row was last written.

Connections. SQLite has one, the listing's: it does everything, its one writer at a time
making a second connection only wait for the first. PostgreSQL has two:
- the listing's connection looks up each page's keys and merges its changed objects (a
  staging table of its own), and runs the deletion at the end;
- the COPY connection (`copy_connection`) COPYs each page's new objects and lists the
  stored keys it saw (background_copy), while the listing's connection goes on with the
  next page's look-up and the reading of the pages after it. On 2 cores the first sync
  otherwise kept about one core busy, Python and PostgreSQL taking turns. The listed keys'
  temporary table lives on this connection, so a page's new objects and its keys commit
  together, and `mark_missing_deleted` reads the keys there.
A listing given no COPY connection on PostgreSQL does it all on its own connection.

Recount after a refused COPY. One COPY is in flight at a time, and a page waits for the one
before it to settle before starting its own, so pages land in order. A page's look-up can
still miss an object that the page before it is COPYing at that moment; this page then
counts it as new and COPYs it, and the primary key refuses the whole COPY. When it is
settled (at the next page, or before the deletion), the refused records are looked up again
and merged on the listing's connection, the later content winning as without the COPY
connection, and the counts are corrected: records found stored move from "new" to "changed"
or "unchanged", according to whether the merge wrote them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sync_service.background_copy import BackgroundCopy
from sync_service.listed_keys import ListedKeys
from sync_service.object_keys import ObjectKey
from sync_service.object_records import Records, Row, as_records, with_content_hash
from sync_service.object_writes import ObjectWrites

# Rows per page (one transaction) for collections read in bulk, i.e. the contacts export.
# Neither path binds a parameter per value, so no backend limit applies; 5,000 rows of the
# widest table are a few MB.
BATCH_SIZE = 5000


@dataclass
class ListingCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def describe(self) -> str:
        return f"{self.inserted:,} new, {self.updated:,} changed, {self.unchanged:,} unchanged"


@contextlib.asynccontextmanager
async def copy_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection | None]:
    """A COPY connection for a listing on `engine`; none on SQLite (see the module)."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    async with engine.connect() as connection:
        yield connection


class ListingWriter:
    """One complete read of a collection, written page by page.

    Use as an async context manager around the pages; call `mark_missing_deleted` only once
    the listing has ended without error.
    """

    def __init__(
        self,
        connection: AsyncConnection,
        table: sa.Table,
        started: datetime,
        copy_connection: AsyncConnection | None = None,
    ) -> None:
        self.connection = connection
        self.table = table
        self.key = ObjectKey(table, connection.dialect)
        self.started = started
        self.counts = ListingCounts()
        self._writes = ObjectWrites(connection, table, self.key)
        if not self._writes.postgres:
            copy_connection = None
        self._listed = ListedKeys(copy_connection or connection, table, self.key)
        self._background = (
            BackgroundCopy(table, self._listed) if copy_connection is not None else None
        )

    async def __aenter__(self) -> ListingWriter:
        await self._listed.create()
        await self._writes.create_stage()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._background is not None and self._background.in_flight:
            if error is None:
                async with self.connection.begin():
                    await self._settle_copy()
            else:
                await self._background.abandon()
        await self._listed.drop()
        await self._writes.drop_stage()

    async def write(self, page: Sequence[Row] | Records) -> int:
        """Write one page in its own transaction; returns how many distinct objects it held."""
        records = page if isinstance(page, Records) else as_records(self.table, page)
        if not records.values:
            return 0
        records = with_content_hash(self.table, records)
        key_of = self.key.reader(records.columns)
        # One row per key, the last copy being the newest: PostgreSQL refuses to update a row
        # twice in one statement, and a COPY would hit the primary key.
        unique = {key_of(values): values for values in records.values}
        async with self.connection.begin():
            stored = await self._writes.stored_hashes(list(unique))
            new = [values for key, values in unique.items() if key not in stored]
            # A live stored object with the same hash is left alone; the rest are merged,
            # which compares every column again.
            hash_at = records.columns.index("content_hash")
            changed = [
                values
                for key, values in unique.items()
                if key in stored and stored[key] != values[hash_at]
            ]
            if self._background is not None:
                updated = await self._writes.merge(records.columns, changed)
                await self._settle_copy()
                self._background.start(records.columns, new, list(stored))
            elif self._writes.postgres:
                updated = await self._writes.merge(records.columns, changed)
                await self._writes.insert_new(records.columns, new)
                await self._listed.add(list(stored))
            else:
                await self._writes.insert_new(records.columns, new)
                updated = await self._writes.merge(records.columns, changed)
                await self._listed.add(list(stored))
        self.counts.inserted += len(new)
        self.counts.updated += updated
        self.counts.unchanged += len(stored) - updated
        return len(unique)

    async def _settle_copy(self) -> None:
        """Settle the COPY in flight, if any; merge what it was refused in the transaction
        open on the listing's connection, and count those records again."""
        if self._background is None:
            return
        columns, refused = await self._background.settle()
        if not refused:
            return
        key_of = self.key.reader(columns)
        stored = await self._writes.stored_hashes([key_of(values) for values in refused])
        written = await self._writes.merge(columns, refused)
        # Counted as new when their page was written; those stored meanwhile were not.
        new = len(refused) - len(stored)
        self.counts.inserted -= len(stored)
        self.counts.updated += written - new
        self.counts.unchanged += len(stored) - (written - new)

    async def mark_missing_deleted(self, now: datetime) -> int:
        """Soft-delete stored rows the complete listing did not contain: neither written by
        it (`synced_at` is its start) nor seen unchanged. Returns how many."""
        async with self.connection.begin():
            await self._settle_copy()  # every page's objects are in before anything is deleted
        return await self._listed.mark_missing_deleted(self.started, now)
