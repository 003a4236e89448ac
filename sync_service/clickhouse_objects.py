"""The sync's object tables in a ClickHouse warehouse (`sync_service.object_store`): each page
written as new versions of the objects it changed, the objects a complete listing no longer
holds written once more with `deleted_at`, and the stored objects read back, always `FINAL`
(`shared.clickhouse_object_tables` says why).

A page, as on SQL: its keys are looked up with their stored `content_hash` (FINAL, so the
latest version answers); new objects and changed ones (or deleted ones come back) are
inserted with a new `version`; unchanged ones are not written, only remembered, so the
deletion at the end can tell them from objects SendGrid no longer has: once the listing is
complete, every live stored object older than the listing (a smaller version) and not
remembered gets a new version with `deleted_at`. The remembered keys are held in memory, a
few dozen bytes each.

A listing into a table that held nothing when it started looks nothing up: whatever it could
find was written by one of its own pages, and writing it again as a newer version is what a
merge of the later copy would do on SQL (the later content wins), only counted as new twice.
Each look-up reads with FINAL every part its keys touch, which for random keys is the whole
table, so this is what keeps a first sync as fast as its inserts.

No transaction spans ClickHouse and DATABASE_URL: `write` returns once ClickHouse acknowledged
the page's insert, and the run records its ledger and cursors on DATABASE_URL only after the
listing's pages returned. A crash in between writes those pages again at the next run: the
same keys with newer versions, which FINAL and merges reduce to one row each.

Times a `DateTime` cannot hold (before 1970, after 2106) are stored as NULL in their typed
column; `raw` keeps the object as SendGrid sent it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared.clickhouse import ClickHouse
from shared.clickhouse_databases import SourceDatabases
from shared.clickhouse_event_rows import DATETIME_RANGE
from shared.clickhouse_object_tables import VERSION
from shared.clickhouse_tables import base_type, quoted
from shared.json_codec import load_json
from sync_service.listing_writer import ListingCounts
from sync_service.object_keys import Key, key_names, key_reader
from sync_service.object_records import Records, Row, as_records, with_content_hash

# Keys per look-up: the keys are written into the statement, which must stay under the
# server's default max_query_size (256 KiB) with keys of a few dozen bytes.
_KEYS_PER_QUERY = 2000


class VersionClock:
    """The `version` of each write: the time in microseconds, so that writes by any process
    order as they happened, yet always larger than the last one this process gave and than
    any stored in the table being written (`at_least`). A clock set back, or another
    replica's clock ahead of this one, therefore never lets an older sync win."""

    def __init__(self, now: Callable[[], int] = time.time_ns) -> None:
        self._now = now
        self._last = 0

    def at_least(self, version: int) -> None:
        self._last = max(self._last, version - 1)

    def next(self) -> int:
        self._last = max(self._last + 1, self._now() // 1000)
        return self._last


def _converters(table: sa.Table, columns: Sequence[str]) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, conversion) for the values the driver does not take as they are."""
    low, high = DATETIME_RANGE
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(columns):
        kind = base_type(table.c[name])
        if kind == "UInt8":
            converters.append((position, lambda value: None if value is None else int(value)))
        elif kind.startswith("DateTime") and table.c[name].nullable:
            converters.append(
                (position, lambda value: value if value is None or low <= value <= high else None)
            )
    return converters


class ClickHouseObjects:
    """Every source's object tables on one ClickHouse server (an `ObjectStore`)."""

    def __init__(self, clickhouse: ClickHouse, clock: VersionClock | None = None) -> None:
        self.clickhouse = clickhouse
        self.clock = clock or VersionClock()
        self.databases = SourceDatabases(clickhouse)

    async def ensure_source(self, schema: str) -> None:
        """Create the source's database and tables unless this process did already."""
        await self.databases.ensure(schema)

    async def read(self, table: sa.Table, sql: str, params: dict[str, Any] | None = None) -> Any:
        """Run a statement on `table`'s database, made first (again, if it was dropped since
        this process made it)."""
        return await self.databases.run(
            str(table.schema), lambda: self.clickhouse.execute(sql, params)
        )

    @contextlib.asynccontextmanager
    async def listing(self, table: sa.Table, started: datetime) -> AsyncIterator[ClickHouseListing]:
        listing = ClickHouseListing(self, table)
        await listing.start()
        yield listing

    async def stored_raw(self, table: sa.Table, api: str | None) -> dict[str, Any]:
        (key,) = table.primary_key.columns
        rows = await self.read(
            table,
            f"SELECT {quoted(key.name)}, raw FROM {target(table)} FINAL "
            "WHERE api = %(api)s AND deleted_at IS NULL",
            {"api": api},
        )
        return {str(stored_key): load_json(raw.encode()) for stored_key, raw in rows}

    async def close(self) -> None:
        await self.clickhouse.close()


def target(table: sa.Table) -> str:
    return f"{quoted(str(table.schema))}.{quoted(table.name)}"


class ClickHouseListing:
    """One listing of `table` (see the module): `write` each page, then
    `mark_missing_deleted` once the listing ended without error."""

    def __init__(self, objects: ClickHouseObjects, table: sa.Table) -> None:
        self.objects = objects
        self.table = table
        self.key_names = key_names(table)
        self.counts = ListingCounts()
        self._key_list = ", ".join(quoted(name) for name in self.key_names)
        self._single = len(self.key_names) == 1
        # Every version this listing writes is at least this; every row stored before it
        # started has a smaller one.
        self._first = 0
        self._look_up = True
        self._unchanged: set[Key] = set()

    async def start(self) -> None:
        ((stored, newest),) = await self.objects.read(
            self.table, f"SELECT count(), max({quoted(VERSION)}) FROM {target(self.table)}"
        )
        self.objects.clock.at_least(int(newest) + 1)
        self._first = self.objects.clock.next()
        self._look_up = stored > 0

    async def write(self, page: Sequence[Row] | Records) -> int:
        records = page if isinstance(page, Records) else as_records(self.table, page)
        if not records.values:
            return 0
        records = with_content_hash(self.table, records)
        key_of = key_reader(self.key_names, records.columns)
        # One row per key, the last copy being the newest, as on SQL.
        unique = {key_of(values): values for values in records.values}
        stored = await self._stored_hashes(records.columns, list(unique.values()))
        hash_at = records.columns.index("content_hash")
        written = [
            values
            for key, values in unique.items()
            if key not in stored or stored[key] != values[hash_at]
        ]
        unchanged = [key for key in stored if key in unique and stored[key] == unique[key][hash_at]]
        await self._insert(records.columns, written)
        self._unchanged.update(unchanged)
        new = sum(1 for key in unique if key not in stored)
        self.counts.inserted += new
        self.counts.updated += len(written) - new
        self.counts.unchanged += len(unchanged)
        return len(unique)

    async def _stored_hashes(
        self, columns: Sequence[str], records: list[tuple[Any, ...]]
    ) -> dict[Key, int | None]:
        """Of the records' keys, those stored: the latest version's `content_hash`, or None
        when it is marked deleted (written again)."""
        if not self._look_up:
            return {}
        positions = [columns.index(name) for name in self.key_names]
        keys = [
            record[positions[0]] if self._single else tuple(record[at] for at in positions)
            for record in records
        ]
        found: dict[Key, int | None] = {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            for *stored_key, stored_hash, live in await self._select_keys(
                "content_hash, deleted_at IS NULL", keys[start : start + _KEYS_PER_QUERY]
            ):
                found[tuple(str(value) for value in stored_key)] = stored_hash if live else None
        return found

    async def _select_keys(self, columns: str, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self.objects.read(
            self.table,
            f"SELECT {self._key_list}, {columns} FROM {target(self.table)} FINAL "
            f"WHERE ({self._key_list}) IN %(keys)s",
            {"keys": tuple(keys)},
        )
        return rows

    async def _insert(self, columns: Sequence[str], records: list[tuple[Any, ...]]) -> None:
        """The records as one new version; returns once ClickHouse acknowledged them."""
        if not records:
            return
        converters = _converters(self.table, columns)
        version = self.objects.clock.next()
        rows = []
        for record in records:
            values = list(record)
            for position, convert in converters:
                values[position] = convert(values[position])
            values.append(version)
            rows.append(values)
        names = ", ".join(quoted(name) for name in (*columns, VERSION))
        await self.objects.clickhouse.insert(
            f"INSERT INTO {target(self.table)} ({names}) VALUES", rows
        )

    async def mark_missing_deleted(self, now: datetime) -> int:
        """Write the live objects stored before this listing and not seen by it once more,
        with `deleted_at`; returns how many."""
        if not self._look_up:
            return 0  # the table held nothing when the listing started
        stored_before = await self.objects.read(
            self.table,
            f"SELECT {self._key_list} FROM {target(self.table)} FINAL "
            f"WHERE deleted_at IS NULL AND {quoted(VERSION)} < %(first)s",
            {"first": self._first},
        )
        missing = [
            (values[0] if self._single else tuple(values))
            for values in stored_before
            if tuple(str(value) for value in values) not in self._unchanged
        ]
        columns = [column.name for column in self.table.columns]
        deleted_at = columns.index("deleted_at")
        width = len(self.key_names)  # the key, before the columns, in each row read
        for start in range(0, len(missing), _KEYS_PER_QUERY):
            rows = await self._select_keys(
                ", ".join(quoted(name) for name in columns),
                missing[start : start + _KEYS_PER_QUERY],
            )
            gone = []
            for row in rows:
                values = list(row[width:])
                values[deleted_at] = now
                gone.append(tuple(values))
            await self._insert(columns, gone)
        return len(missing)
