"""Event records stored exactly once in ClickHouse (`shared.event_rows.EventRows`).

ClickHouse refuses no duplicate key, so "once" is kept in three steps: the ids of a group are
looked up on the sorting key in bulk and only the new records are inserted; the tables are
`ReplacingMergeTree` ordered by `id`, so a copy that slipped in anyway (two receivers storing
one resend at the same moment) is merged away; and every read says `FINAL` until then
(`shared.clickhouse_tables`). A reused `sg_event_id` is told from a resend by comparing the
stored content, as on the SQL warehouses.

Each source's database and tables are created on its first write in this process (each
statement can run again), so a receiver needs nothing prepared beyond the server (or the
cluster's servers). On a cluster every statement here goes through the Distributed tables:
the look-up asks every shard, and an insert is acknowledged once each shard wrote its rows;
one that fails part way (a shard down) leaves the other shards' rows stored, which the
resend's look-up finds, so it inserts only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from shared.clickhouse import ClickHouse
from shared.clickhouse_databases import SourceDatabases
from shared.clickhouse_tables import base_type, quoted
from shared.event_parsing import ParsedBatch, RejectedRow
from shared.event_records import ID_AT, ORIGIN_AT, RAW_AT, EventRecord
from shared.json_codec import canonical_json, load_json
from shared.tables import source_tables

# Partitions (months of `timestamp`) one INSERT writes at most; see `_insert`.
_MONTHS_PER_INSERT = 50

# Ids per look-up: keeps a statement well under the server's default max_query_size (256 KiB).
_IDS_PER_QUERY = 2000


# What a ClickHouse `DateTime` holds (seconds as UInt32), on 18.16 and current releases alike.
DATETIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC))


def refuse_unstorable(batch: ParsedBatch) -> None:
    """Move the records ClickHouse cannot hold as they are (a time before 1970 or after
    2106, which its `DateTime` would wrap around) to the batch's rejected rows, with the
    reason, rather than store a wrong time. The SQL warehouses take any such time."""
    low, high = DATETIME_RANGE
    tables = source_tables(None)
    for table_name, records in batch.rows.items():
        columns = list(tables.events[table_name].columns)
        times = [n for n, column in enumerate(columns) if base_type(column).startswith("DateTime")]
        event_at = [column.name for column in columns].index("event")
        kept = []
        for record in records:
            wrong = [
                columns[n].name
                for n in times
                if record[n] is not None and not low <= record[n] <= high
            ]
            if not wrong:
                kept.append(record)
                continue
            batch.rejected.append(
                RejectedRow.of(
                    f"{', '.join(wrong)} outside what the ClickHouse warehouse stores "
                    "(1970-01-01 to 2106-02-07 UTC)",
                    record[RAW_AT].encode(),
                    record[event_at],
                )
            )
        records[:] = kept
    for table_name in [name for name, records in batch.rows.items() if not records]:
        del batch.rows[table_name]


def _converters(table: sa.Table) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, conversion) for the values the driver does not take as they are."""
    return [
        (position, lambda value: None if value is None else int(value))
        for position, column in enumerate(table.columns)
        if base_type(column) == "UInt8"
    ]


def driver_rows(table: sa.Table, records: Sequence[EventRecord]) -> Sequence[Sequence[Any]]:
    """The records as clickhouse-driver takes them for `table` (booleans as 0/1); the
    records themselves when nothing needs converting."""
    converters = _converters(table)
    if not converters:
        return records
    converted = []
    for record in records:
        values = list(record)
        for position, convert in converters:
            values[position] = convert(values[position])
        converted.append(values)
    return converted


class ClickHouseEventRows:
    """The event tables of every source on one ClickHouse server."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse
        self.databases = SourceDatabases(clickhouse)

    async def ensure_source(self, schema: str) -> None:
        """Create the source's database, tables (the sync's object tables too) and view
        unless this process did already."""
        await self.databases.ensure(schema)

    async def _stored(self, table: sa.Table, columns: str, ids: Sequence[str]) -> list[Any]:
        schema = str(table.schema)
        unique = sorted(set(ids))

        async def look_up() -> list[Any]:
            rows: list[Any] = []
            for start in range(0, len(unique), _IDS_PER_QUERY):
                rows += await self.clickhouse.execute(
                    f"SELECT {columns} FROM {quoted(schema)}.{quoted(table.name)} "
                    "WHERE id IN %(ids)s",
                    {"ids": tuple(unique[start : start + _IDS_PER_QUERY])},
                )
            return rows

        return await self.databases.run(schema, look_up)

    async def _insert(self, table: sa.Table, records: Sequence[EventRecord]) -> None:
        """One INSERT per block of at most _MONTHS_PER_INSERT months: a block spanning more
        partitions than `max_partitions_per_insert_block` (100 on current releases) is refused
        whole, and resending it would never help. A failure part way leaves earlier blocks
        stored, which the resend finds (each event is still stored once)."""
        at = [column.name for column in table.columns].index("timestamp")
        block: list[EventRecord] = []
        months: set[tuple[int, int]] = set()
        for record in sorted(records, key=lambda record: record[at]):
            month = (record[at].year, record[at].month)
            if month not in months and len(months) == _MONTHS_PER_INSERT:
                await self._insert_block(table, block)
                block, months = [], set()
            block.append(record)
            months.add(month)
        if block:
            await self._insert_block(table, block)

    async def _insert_block(self, table: sa.Table, records: Sequence[EventRecord]) -> None:
        rows = driver_rows(table, records)
        names = ", ".join(quoted(column.name) for column in table.columns)
        await self.clickhouse.insert(
            f"INSERT INTO {quoted(str(table.schema))}.{quoted(table.name)} ({names}) VALUES",
            rows,
        )

    async def insert_all_unless_stored(
        self, table: sa.Table, records: Sequence[EventRecord]
    ) -> bool:
        # No key refuses a stored id here, so this is the look-up path: all or none.
        if not records:
            return True
        if await self._stored(table, "id", [record[ID_AT] for record in records]):
            return False
        await self._insert(table, records)
        return True

    async def insert_new_rows(
        self, table: sa.Table, records: Sequence[EventRecord], *, contended: bool
    ) -> set[str]:
        if not records:
            return set()
        present = {row[0] for row in await self._stored(table, "id", [r[ID_AT] for r in records])}
        new = [record for record in records if record[ID_AT] not in present]
        if new:
            await self._insert(table, new)
        return {record[ID_AT] for record in new}

    async def rows_differing_from_stored(
        self, table: sa.Table, records: Sequence[EventRecord]
    ) -> set[int]:
        if not records:
            return set()
        stored: dict[tuple[str, str], str] = {}
        for row_id, raw, origin in await self._stored(
            table, "id, raw, origin", [record[ID_AT] for record in records]
        ):
            stored[(row_id, origin)] = canonical_json(load_json(raw.encode()))
        differing = set()
        for position, record in enumerate(records):
            kept = stored.get((record[ID_AT], record[ORIGIN_AT]))
            if kept is not None and kept != canonical_json(load_json(record[RAW_AT].encode())):
                differing.add(position)
        return differing
