"""A source's ClickHouse database as each process sees it: made once by whichever writer comes
first in this process (the receiver, a backfill, a sync), and made again when it was dropped
meanwhile (the source deleted with its data, and one of its name registered again).

The receiver's event rows (`shared.clickhouse_event_rows`) and the sync's objects
(`sync_service.clickhouse_objects`) share this one definition, so both make the whole database
(event tables, object tables, view) and react to a dropped one alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from clickhouse_driver.errors import ServerException

from shared.clickhouse import ClickHouse
from shared.clickhouse_object_tables import source_warehouse_statements
from shared.clickhouse_shards import run_statements

# ClickHouse's error codes (stable across releases) for a table or database that is gone.
UNKNOWN_TABLE, UNKNOWN_DATABASE = 60, 81

T = TypeVar("T")


def is_gone(exc: ServerException) -> bool:
    """The statement named a table or database that does not exist (any more)."""
    return exc.code in (UNKNOWN_TABLE, UNKNOWN_DATABASE)


class SourceDatabases:
    """The source databases this process has made on `clickhouse` (one server or a cluster)."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse
        self._ready: set[str] = set()
        self._lock = asyncio.Lock()

    async def ensure(self, schema: str) -> None:
        """Create the source's database, its event and object tables and its view, unless
        this process did already. Every statement can run again (IF NOT EXISTS), by any
        number of processes at once."""
        if schema in self._ready:
            return
        async with self._lock:
            if schema not in self._ready:
                statements = source_warehouse_statements(schema, self.clickhouse.target.cluster)
                await run_statements(self.clickhouse, statements)
                self._ready.add(schema)

    async def run(self, schema: str, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` once the source's database is made; once more, after making it again, if
        it was dropped since this process made it."""
        for attempt in range(2):
            await self.ensure(schema)
            try:
                return await call()
            except ServerException as exc:
                if not is_gone(exc) or attempt:
                    raise
                self._ready.discard(schema)
        raise AssertionError("unreachable: the second attempt returns or raises")
