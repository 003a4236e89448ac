"""The one step of the event write path that depends on where event tables live: storing a
table's records exactly once. `shared.event_table_write` decides what is a duplicate and what
a reused id; an `EventRows` stores and compares.

`SqlEventRows` is the PostgreSQL and SQLite warehouse (`shared.event_inserts`, inside the
caller's transaction); `shared.clickhouse_event_rows.ClickHouseEventRows` is ClickHouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import event_inserts
from shared.event_records import EventRecord


class EventRows(Protocol):
    """One warehouse's inserts of event records (`shared.event_records` layout) into the
    table `table` names (its schema is the source's)."""

    async def insert_all_unless_stored(
        self, table: sa.Table, records: Sequence[EventRecord]
    ) -> bool:
        """Insert every record, or none (False) when one's id is stored already; the
        records' ids are distinct."""
        ...

    async def insert_new_rows(
        self, table: sa.Table, records: Sequence[EventRecord], *, contended: bool
    ) -> set[str]:
        """Insert the records whose id is not stored yet; returns their ids."""
        ...

    async def rows_differing_from_stored(
        self, table: sa.Table, records: Sequence[EventRecord]
    ) -> set[int]:
        """Positions of `records` (each with its id stored) stored with other content by
        the same origin: a reused `sg_event_id`, not a resend."""
        ...


class SqlEventRows:
    """PostgreSQL or SQLite, within the transaction of `connection`."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def insert_all_unless_stored(
        self, table: sa.Table, records: Sequence[EventRecord]
    ) -> bool:
        return await event_inserts.insert_all_unless_stored(self.connection, table, records)

    async def insert_new_rows(
        self, table: sa.Table, records: Sequence[EventRecord], *, contended: bool
    ) -> set[str]:
        return await event_inserts.insert_new_rows(
            self.connection, table, records, contended=contended
        )

    async def rows_differing_from_stored(
        self, table: sa.Table, records: Sequence[EventRecord]
    ) -> set[int]:
        return await event_inserts.rows_differing_from_stored(self.connection, table, records)
