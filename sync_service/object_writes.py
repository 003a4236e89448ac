"""The statements that write one page into an object table, on the listing's connection:
the look-up of what is stored, the plain insert of new objects, and the merge of changed
ones, which writes a stored row only where something differs (or it had been deleted).

PostgreSQL merges through a staging table: the records are COPYed into it and merged with
one INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE; SQLite runs the same statement
through executemany. A re-sync of an account where little changed therefore writes little,
instead of rewriting every row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.bulk_inserts import copy_records, sqlite_insert_sql, sqlite_values
from shared.json_codec import dump_json
from sync_service.object_keys import Key, ObjectKey

_STAGE = "_sync_stage"
# Written by every page, so not part of what "changed" means.
_BOOKKEEPING = ("synced_at", "deleted_at")


class ObjectWrites:
    """Writes to `table` (keyed by its primary key, `key`) on `connection`, each inside the
    transaction the caller has open."""

    def __init__(self, connection: AsyncConnection, table: sa.Table, key: ObjectKey) -> None:
        self.connection = connection
        self.table = table
        self.key = key
        self.postgres = connection.dialect.name == "postgresql"
        preparer = connection.dialect.identifier_preparer
        self._target = preparer.format_table(table)
        self._quote = preparer.quote

    async def create_stage(self) -> None:
        """PostgreSQL's staging table, created once per listing and emptied by each page's
        commit: no catalog churn per page. In a transaction of its own."""
        if not self.postgres:
            return
        async with self.connection.begin():
            await self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_STAGE}")
            await self.connection.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {_STAGE} (LIKE {self._target}) ON COMMIT DELETE ROWS"
            )

    async def drop_stage(self) -> None:
        """Never raises, so a listing's own error wins."""
        if not self.postgres:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
            async with self.connection.begin():
                await self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_STAGE}")

    async def stored_hashes(self, keys: list[Key]) -> dict[Key, int | None]:
        """Of `keys`, those stored: their `content_hash`, or None if the object is marked
        deleted (or was written before hashes existed), so that it is written again."""
        if not keys:
            return {}
        live_hash = "CASE WHEN t.deleted_at IS NULL THEN t.content_hash END"
        result = await self.connection.exec_driver_sql(
            f"SELECT u.n, {live_hash} FROM {self._target} t {self.key.join_on_json()}",
            (dump_json(keys),),
        )
        # The driver's rows are (position, hash) pairs; the typing knows only "a tuple".
        rows = cast("Iterable[tuple[int, int | None]]", result)
        return {keys[position]: stored_hash for position, stored_hash in rows}

    async def insert_new(self, columns: Sequence[str], values: list[tuple[Any, ...]]) -> None:
        """Objects not stored yet, by the backend's fastest plain insert."""
        if not values:
            return
        if self.postgres:
            await copy_records(self.connection, self.table.name, self.table.schema, columns, values)
        else:
            await self.connection.exec_driver_sql(
                sqlite_insert_sql(self.connection, self.table, columns),
                sqlite_values(self.connection, self.table, columns, values),
            )

    async def merge(self, columns: Sequence[str], values: list[tuple[Any, ...]]) -> int:
        """Write the stored objects among `values` that differ; returns how many were."""
        if not values:
            return 0
        if self.postgres:
            names = ", ".join(self._quote(name) for name in columns)
            await copy_records(self.connection, _STAGE, None, columns, values)
            result = await self.connection.exec_driver_sql(
                self._upsert_sql(columns, f"SELECT {names} FROM {_STAGE}", "EXCLUDED")
            )
        else:
            result = await self.connection.exec_driver_sql(
                self._upsert_sql(
                    columns, f"VALUES ({', '.join('?' for _ in columns)})", "excluded"
                ),
                sqlite_values(self.connection, self.table, columns, values),
            )
        return int(result.rowcount or 0)

    def _upsert_sql(self, columns: Sequence[str], source: str, excluded: str) -> str:
        """INSERT ... ON CONFLICT DO UPDATE that writes a stored row only if it differs."""
        q = self._quote
        keys = self.key.names
        names = ", ".join(q(name) for name in columns)
        updates = ", ".join(
            f"{q(name)} = {excluded}.{q(name)}" for name in columns if name not in keys
        )
        compared = [name for name in columns if name not in keys and name not in _BOOKKEEPING]
        mine = ", ".join(f"t.{q(name)}" for name in compared)
        theirs = ", ".join(f"{excluded}.{q(name)}" for name in compared)
        differs = "IS DISTINCT FROM" if self.postgres else "IS NOT"
        return (
            f"INSERT INTO {self._target} AS t ({names}) {source} "
            f"ON CONFLICT ({', '.join(self.key.quoted)}) DO UPDATE SET {updates} "
            f"WHERE t.deleted_at IS NOT NULL OR ({mine}) {differs} ({theirs})"
        )
