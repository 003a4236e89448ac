"""The stored keys a listing saw, and the soft deletion of stored objects it did not see.

A listing skips writing the stored objects it found unchanged, so `synced_at` alone cannot
tell them from objects SendGrid no longer has: their keys are kept in a temporary table of
one connection, and once the listing is complete the stored objects it neither wrote
(`synced_at` is its start) nor saw are marked deleted. A temporary table lives on its
connection, so every statement here runs on the same one. Keys are kept as text, one
column per key column (see object_keys).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.bulk_inserts import copy_records
from sync_service.object_keys import Key, ObjectKey

LISTED = "_sync_listed"


class ListedKeys:
    """The keys seen by one listing of `table`, on `connection`."""

    def __init__(self, connection: AsyncConnection, table: sa.Table, key: ObjectKey) -> None:
        self.connection = connection
        self.table = table
        self.key = key
        self._postgres = connection.dialect.name == "postgresql"
        self._columns = tuple(f"k{at}" for at in range(len(key.names)))

    async def create(self) -> None:
        """An empty table of keys, in a transaction of its own. Dropped first: the last
        listing on this connection may have had a key of another shape."""
        columns = ", ".join(f"{name} TEXT" for name in self._columns)
        async with self.connection.begin():
            if self._postgres:
                await self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {LISTED}")
                await self.connection.exec_driver_sql(
                    f"CREATE TEMPORARY TABLE {LISTED} ({columns})"
                )
            else:
                await self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{LISTED}")
                await self.connection.exec_driver_sql(
                    f"CREATE TEMP TABLE {LISTED} ({columns}, "
                    f"PRIMARY KEY ({', '.join(self._columns)}))"
                )

    async def add(self, keys: Sequence[Key]) -> None:
        """Remember `keys`, in the transaction open on the connection."""
        if not keys:
            return
        if self._postgres:
            await copy_records(self.connection, LISTED, None, self._columns, list(keys))
        else:
            marks = ", ".join("?" for _ in self._columns)
            await self.connection.exec_driver_sql(
                f"INSERT OR IGNORE INTO temp.{LISTED} VALUES ({marks})", list(keys)
            )

    async def drop(self) -> None:
        """Drop the table: a live connection must not carry it back to the pool, and one broken
        mid-listing is discarded with it. Never raises, so a listing's own error wins."""
        with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
            async with self.connection.begin():
                await self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {LISTED}")

    async def mark_missing_deleted(self, started: datetime, now: datetime) -> int:
        """Soft-delete stored rows the listing that started at `started` did not contain;
        returns how many."""
        target = self.connection.dialect.identifier_preparer.format_table(self.table)
        listed = LISTED if self._postgres else f"temp.{LISTED}"
        # Keys compare as text (object_keys); the target is named in full, as both backends
        # take it in a correlated subquery.
        stored = self.key.as_text(target)
        same = " AND ".join(f"l.{k} = {s}" for k, s in zip(self._columns, stored, strict=True))
        async with self.connection.begin():
            result = await self.connection.execute(
                sa.text(
                    f"UPDATE {target} SET deleted_at = :now "
                    f"WHERE deleted_at IS NULL AND synced_at < :started AND NOT EXISTS "
                    f"(SELECT 1 FROM {listed} l WHERE {same})"
                ).bindparams(
                    sa.bindparam("now", type_=self.table.c.deleted_at.type),
                    sa.bindparam("started", type_=self.table.c.synced_at.type),
                ),
                {"now": now, "started": started},
            )
        return int(result.rowcount or 0)
