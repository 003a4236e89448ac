"""A page's new objects COPYed, and the stored keys it saw listed, on a connection of their
own while the listing goes on with the next page (PostgreSQL only).

One COPY is in flight at a time. It runs in a transaction of its own, and is refused as a
whole if one of its objects was stored meanwhile: by the page before it, whose COPY had not
committed yet when this page's objects were looked up. The caller then merges what was
refused (see ListingWriter's recount); the keys it was to list are listed either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.bulk_inserts import copy_records
from shared.db_errors import lost_write_race
from sync_service.listed_keys import ListedKeys
from sync_service.object_keys import Key

# What a COPY could not do: the records it was refused, and the keys it was to list.
_Refused = tuple[list[tuple[Any, ...]], list[Key]]


class BackgroundCopy:
    """COPYs into `table` on `listed.connection`, the connection that also holds the listed
    keys, so a page's objects and its keys commit together."""

    def __init__(self, table: sa.Table, listed: ListedKeys) -> None:
        self.table = table
        self.listed = listed
        self.connection: AsyncConnection = listed.connection
        self._copying: asyncio.Task[_Refused] | None = None
        self._columns: Sequence[str] = ()  # of the records in flight

    @property
    def in_flight(self) -> bool:
        return self._copying is not None

    def start(self, columns: Sequence[str], new: list[tuple[Any, ...]], seen: list[Key]) -> None:
        """COPY `new` and list `seen`; the COPY before must be settled (`settle`)."""
        assert self._copying is None, "one COPY at a time: settle the one in flight first"
        self._columns = columns
        self._copying = asyncio.create_task(self._copy(columns, new, seen))

    async def _copy(
        self, columns: Sequence[str], new: list[tuple[Any, ...]], seen: list[Key]
    ) -> _Refused:
        try:
            async with self.connection.begin():
                await copy_records(
                    self.connection, self.table.name, self.table.schema, columns, new
                )
                await self.listed.add(seen)
        except (sa.exc.DBAPIError, asyncpg.PostgresError) as exc:
            # Refused for a key stored meanwhile (told by its SQLSTATE, as the ingest writer
            # tells its races); any other error is the listing's to report.
            if not lost_write_race(exc):
                raise
            return new, seen
        return [], []

    async def settle(self) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Wait for the COPY in flight (its errors surface here) and list the keys of a
        refused one. Returns the columns and the records it was refused: none, or all."""
        if self._copying is None:
            return (), []
        task, self._copying = self._copying, None
        refused, seen = await task
        if seen:  # listed once the connection is free again
            async with self.connection.begin():
                await self.listed.add(seen)
        return self._columns, refused

    async def abandon(self) -> None:
        """Let the COPY in flight finish (what it wrote is valid), ignoring its errors: the
        listing failed, and its own error wins."""
        if self._copying is not None:
            task, self._copying = self._copying, None
            with contextlib.suppress(Exception):
                await task
