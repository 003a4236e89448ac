"""Writing synced objects: one complete listing of a collection, page by page, and the soft
deletion of what it no longer contains.

Each page is one transaction, and its keys are looked up first:
- objects not stored yet take the backend's fastest plain insert: a binary COPY straight into
  the table on PostgreSQL, one prepared INSERT run by executemany on SQLite;
- stored objects are written only where something differs (or they had been deleted): on
  PostgreSQL they are COPYed into a staging table and merged with one INSERT ... ON CONFLICT
  DO UPDATE ... WHERE, on SQLite the same statement runs through executemany. A re-sync of an
  account where little changed therefore writes little, instead of rewriting every row.

So `synced_at` is when a row was last written. The stored objects a listing saw are kept in
a temporary table (on the listing's COPY connection if it has one, below); once the listing
is complete, stored objects it neither wrote nor saw are marked deleted.

On PostgreSQL a listing can also be given a COPY connection: a page's new objects are then
COPYed on it, and the stored keys it saw listed there, while the listing goes on with the
next page's look-up and the reading of the pages after it (on 2 cores the first sync
otherwise kept about one core busy, Python and PostgreSQL taking turns). One COPY is in
flight at a time, so pages still land in order: if an object of a page is stored by the
page before it while its look-up ran, its COPY hits the primary key and its objects are
merged instead, the later content winning as it does without the COPY connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.bulk_values import converted, dialect_converters, is_json, keys_in_json
from shared.json_codec import canonical_json, dump_json
from sync_service.records import Records, Row, content_hash

# Rows per page (one transaction) for collections read in bulk, i.e. the contacts export.
# Neither path binds a parameter per value, so no backend limit applies; 5,000 rows of the
# widest table are a few MB.
BATCH_SIZE = 5000

_STAGE = "_sync_stage"
_LISTED = "_sync_listed"
# Written by every page, so not part of what "changed" means.
_BOOKKEEPING = ("synced_at", "deleted_at")


def _json_or_none(value: Any) -> str | None:
    # Sorted keys: an object read back from the database (jsonb reorders keys) and merged
    # into a row hashes the same as when it came from SendGrid.
    return None if value is None else canonical_json(value)


def as_records(table: sa.Table, rows: Sequence[Row]) -> Records:
    """Dict rows (the small collections) as records in the table's column order."""
    # `content_hash` is added by the listing, which computes it.
    columns = tuple(column.name for column in table.columns if column.name != "content_hash")
    json_columns = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
    return Records(
        columns,
        [
            tuple(
                _json_or_none(row[name]) if name in json_columns else row[name] for name in columns
            )
            for row in rows
        ],
    )


def with_content_hash(table: sa.Table, records: Records) -> Records:
    """The records with `content_hash` appended: a hash of their JSON values (`raw`, the
    object as SendGrid sent it, and what is derived from it with other data, such as
    `custom_fields`). The typed columns come from the same JSON. Records built with their
    hash (`ContactRecords`) are returned as they are."""
    if "content_hash" in records.columns:
        return records
    positions = [i for i, name in enumerate(records.columns) if is_json(table.c[name])]
    if len(positions) == 1:  # itemgetter of one position gives the value, not a tuple
        (only,) = positions
        hashes = [content_hash((values[only],)) for values in records.values]
    else:
        json_values = operator.itemgetter(*positions)
        hashes = [content_hash(json_values(values)) for values in records.values]
    return Records(
        (*records.columns, "content_hash"),
        [(*values, digest) for values, digest in zip(records.values, hashes, strict=True)],
    )


@dataclass
class ListingCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def describe(self) -> str:
        return f"{self.inserted:,} new, {self.updated:,} changed, {self.unchanged:,} unchanged"


@contextlib.asynccontextmanager
async def copy_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection | None]:
    """A connection for a listing's COPYs of new objects on `engine`; none on SQLite, whose
    one writer at a time would only make the two wait for each other."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    async with engine.connect() as connection:
        yield connection


class Listing:
    """One complete read of a collection, written page by page on one connection.

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
        keys = list(table.primary_key.columns)
        if len(keys) != 1:
            raise ValueError(f"{table.name} must have a single-column primary key")
        self.connection = connection
        self.table = table
        self.key = keys[0].name
        self.started = started
        self.counts = ListingCounts()
        self._postgres = connection.dialect.name == "postgresql"
        preparer = connection.dialect.identifier_preparer
        self._target = preparer.format_table(table)
        self._quote = preparer.quote
        self._copy_connection = copy_connection if self._postgres else None
        # The keys seen live where they are written: on the COPY connection if there is one.
        self._listing_connection = self._copy_connection or connection
        # The COPY in flight, if any: its records' columns, and its task, which gives back
        # the records it could not COPY and the stored keys it was to list.
        self._copying: asyncio.Task[tuple[list[tuple[Any, ...]], list[Any]]] | None = None
        self._copied_columns: Sequence[str] = ()

    async def __aenter__(self) -> Listing:
        if self._postgres:
            async with self._listing_connection.begin():
                await self._listing_connection.exec_driver_sql(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_LISTED} (key text)"
                )
                await self._listing_connection.exec_driver_sql(f"TRUNCATE {_LISTED}")
        async with self.connection.begin():
            if self._postgres:
                # Created once per listing, emptied by each page's commit: no catalog
                # churn per page.
                await self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_STAGE}")
                await self.connection.exec_driver_sql(
                    f"CREATE TEMPORARY TABLE {_STAGE} (LIKE {self._target}) ON COMMIT DELETE ROWS"
                )
            else:
                await self.connection.exec_driver_sql(
                    f"CREATE TEMP TABLE IF NOT EXISTS {_LISTED} (key TEXT PRIMARY KEY)"
                )
                await self.connection.exec_driver_sql(f"DELETE FROM temp.{_LISTED}")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._copying is not None and error is None:
            async with self.connection.begin():
                await self._settle_copy()
        elif self._copying is not None:
            # The COPY in flight finishes (what it wrote is valid); the listing's error wins.
            with contextlib.suppress(Exception):
                await self._copying
        # A connection broken mid-listing is discarded with its temporary table; a live one
        # must not carry it back to the pool. Either way the listing's own error wins.
        with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
            async with self._listing_connection.begin():
                await self._listing_connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_LISTED}")
        with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
            async with self.connection.begin():
                if self._postgres:
                    await self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_STAGE}")

    async def write(self, page: Sequence[Row] | Records) -> int:
        """Write one page in its own transaction; returns how many distinct objects it held."""
        records = page if isinstance(page, Records) else as_records(self.table, page)
        if not records.values:
            return 0
        records = with_content_hash(self.table, records)
        at = records.columns.index(self.key)
        # One row per key, the last copy being the newest: PostgreSQL refuses to update a row
        # twice in one statement, and a COPY would hit the primary key.
        unique = list({values[at]: values for values in records.values}.values())
        async with self.connection.begin():
            stored = await self._stored_hashes([values[at] for values in unique])
            new = [values for values in unique if values[at] not in stored]
            # A live stored object with the same hash is left alone; the rest are merged,
            # which compares every column again.
            hash_at = records.columns.index("content_hash")
            changed = [
                values
                for values in unique
                if values[at] in stored and stored[values[at]] != values[hash_at]
            ]
            if self._postgres:
                updated = await self._merge_postgres(records.columns, changed)
                if self._copy_connection is not None:
                    await self._copy_in_background(
                        self._copy_connection, records.columns, new, list(stored)
                    )
                else:
                    await self._copy(self.table.name, self.table.schema, records.columns, new)
                    await self._copy(_LISTED, None, ("key",), [(key,) for key in stored])
            else:
                await self._insert_sqlite(records.columns, new)
                updated = await self._merge_sqlite(records.columns, changed)
                if stored:
                    await self.connection.exec_driver_sql(
                        f"INSERT OR IGNORE INTO temp.{_LISTED} (key) VALUES (?)",
                        [(key,) for key in stored],
                    )
        self.counts.inserted += len(new)
        self.counts.updated += updated
        self.counts.unchanged += len(stored) - updated
        return len(unique)

    async def _copy_in_background(
        self,
        copy_connection: AsyncConnection,
        columns: Sequence[str],
        new: list[tuple[Any, ...]],
        seen: list[Any],
    ) -> None:
        """COPY `new` and list the `seen` keys on the COPY connection, once the COPY before
        it is settled."""
        await self._settle_copy()
        self._copied_columns = columns
        self._copying = asyncio.create_task(
            self._copy_elsewhere(copy_connection, columns, new, seen)
        )

    async def _copy_elsewhere(
        self,
        copy_connection: AsyncConnection,
        columns: Sequence[str],
        new: list[tuple[Any, ...]],
        seen: list[Any],
    ) -> tuple[list[tuple[Any, ...]], list[Any]]:
        """COPY `new` and list `seen` in a transaction of its own. Returns what is left to
        do: nothing, or all of it if one of `new` was stored by the page before while this
        page was looked up."""
        try:
            async with copy_connection.begin():
                await self._copy(self.table.name, self.table.schema, columns, new, copy_connection)
                await self._copy(_LISTED, None, ("key",), [(key,) for key in seen], copy_connection)
        except (sa.exc.IntegrityError, asyncpg.UniqueViolationError):
            return new, seen
        return [], []

    async def _settle_copy(self) -> None:
        """Wait for the COPY in flight; its errors surface here. Rows it could not COPY are
        merged in the current transaction of the listing's connection, and counted again."""
        if self._copying is None:
            return
        task, self._copying = self._copying, None
        refused, seen = await task
        if seen:  # listed once the COPY connection is free again
            assert self._copy_connection is not None
            async with self._copy_connection.begin():
                await self._copy(
                    _LISTED, None, ("key",), [(key,) for key in seen], self._copy_connection
                )
        if not refused:
            return
        at = self._copied_columns.index(self.key)
        stored = await self._stored_hashes([values[at] for values in refused])
        written = await self._merge_postgres(self._copied_columns, refused)
        # Counted as new when their page was written; those stored meanwhile were not.
        new = len(refused) - len(stored)
        self.counts.inserted -= len(stored)
        self.counts.updated += written - new
        self.counts.unchanged += len(stored) - (written - new)

    async def mark_missing_deleted(self, now: datetime) -> int:
        """Soft-delete stored rows the complete listing did not contain: neither written by
        it (`synced_at` is its start) nor seen unchanged."""
        key = self._quote(self.key)
        listed = _LISTED if self._postgres else f"temp.{_LISTED}"
        async with self.connection.begin():
            await self._settle_copy()  # every page's objects are in before anything is deleted
        async with self._listing_connection.begin():
            result = await self._listing_connection.execute(
                sa.text(
                    f"UPDATE {self._target} SET deleted_at = :now "
                    f"WHERE deleted_at IS NULL AND synced_at < :started AND NOT EXISTS "
                    f"(SELECT 1 FROM {listed} l WHERE l.key = {self._target}.{key})"
                ).bindparams(
                    sa.bindparam("now", type_=self.table.c.deleted_at.type),
                    sa.bindparam("started", type_=self.table.c.synced_at.type),
                ),
                {"now": now, "started": self.started},
            )
        return int(result.rowcount or 0)

    async def _stored_hashes(self, keys: list[Any]) -> dict[Any, int | None]:
        """Of `keys`, those stored: their `content_hash`, or None if the object is marked
        deleted (or was written before hashes existed), so that it is written again."""
        key = self._quote(self.key)
        live_hash = "CASE WHEN t.deleted_at IS NULL THEN t.content_hash END"
        ids = keys_in_json(self.connection.dialect.name, key)
        result = await self.connection.exec_driver_sql(
            f"SELECT t.{key}, {live_hash} FROM {self._target} t JOIN {ids}", (dump_json(keys),)
        )
        # The driver's rows are (key, hash) pairs; the typing knows only "a tuple".
        rows = cast("Iterable[tuple[Any, int | None]]", result)
        return {stored_key: stored_hash for stored_key, stored_hash in rows}

    async def _copy(
        self,
        table: str,
        schema: str | None,
        columns: Sequence[str],
        values: list[tuple[Any, ...]],
        connection: AsyncConnection | None = None,
    ) -> None:
        if not values:
            return
        connection = connection or self.connection
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None  # asyncpg's connection, inside a `connection.begin()`
        if not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it
            # runs; a raw COPY before that would commit on its own, outside the transaction
            # (and into a staging table that empties on commit).
            await connection.exec_driver_sql("SELECT 1")
        await driver.copy_records_to_table(
            table, schema_name=schema, records=values, columns=list(columns)
        )

    def _upsert_sql(self, columns: Sequence[str], source: str, excluded: str) -> str:
        """INSERT ... ON CONFLICT DO UPDATE that writes a stored row only if it differs."""
        q = self._quote
        names = ", ".join(q(name) for name in columns)
        updates = ", ".join(
            f"{q(name)} = {excluded}.{q(name)}" for name in columns if name != self.key
        )
        compared = [name for name in columns if name != self.key and name not in _BOOKKEEPING]
        mine = ", ".join(f"t.{q(name)}" for name in compared)
        theirs = ", ".join(f"{excluded}.{q(name)}" for name in compared)
        differs = "IS DISTINCT FROM" if self._postgres else "IS NOT"
        return (
            f"INSERT INTO {self._target} AS t ({names}) {source} "
            f"ON CONFLICT ({q(self.key)}) DO UPDATE SET {updates} "
            f"WHERE t.deleted_at IS NOT NULL OR ({mine}) {differs} ({theirs})"
        )

    async def _merge_postgres(self, columns: Sequence[str], values: list[tuple[Any, ...]]) -> int:
        if not values:
            return 0
        names = ", ".join(self._quote(name) for name in columns)
        await self._copy(_STAGE, None, columns, values)
        result = await self.connection.exec_driver_sql(
            self._upsert_sql(columns, f"SELECT {names} FROM {_STAGE}", "EXCLUDED")
        )
        return int(result.rowcount or 0)

    def _sqlite_values(
        self, columns: Sequence[str], values: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        return converted(values, dialect_converters(self.table, columns, self.connection.dialect))

    async def _insert_sqlite(self, columns: Sequence[str], values: list[tuple[Any, ...]]) -> None:
        if not values:
            return
        names = ", ".join(self._quote(name) for name in columns)
        await self.connection.exec_driver_sql(
            f"INSERT INTO {self._target} ({names}) VALUES ({', '.join('?' for _ in columns)})",
            self._sqlite_values(columns, values),
        )

    async def _merge_sqlite(self, columns: Sequence[str], values: list[tuple[Any, ...]]) -> int:
        if not values:
            return 0
        source = f"VALUES ({', '.join('?' for _ in columns)})"
        result = await self.connection.exec_driver_sql(
            self._upsert_sql(columns, source, "excluded"),
            self._sqlite_values(columns, values),
        )
        return int(result.rowcount or 0)
