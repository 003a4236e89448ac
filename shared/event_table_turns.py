"""Writers of one ClickHouse event table take turns, across every receiver process.

ClickHouse refuses no duplicate key. Two receivers behind a load balancer storing the same new
event at the same moment (SendGrid resending a batch the first receiver is still writing)
would both look its id up, both miss it and both insert it: `ReplacingMergeTree` and `FINAL`
keep what users read right, but each receiver would count the event as stored in
`webhook_stats`. So a source's event table is looked up and written under a PostgreSQL
transaction-level advisory lock, taken on DATABASE_URL (the control database every receiver
shares) in the transaction that then commits the `rejected` rows and `webhook_stats`: the next
writer of the table looks up only once the last one's insert is acknowledged and its counts
committed, so it finds those ids stored. A receiver that dies releases its locks with its
connection. Locks are taken in one order (schema, then table), so two writers never wait on
each other in a cycle.

Within one process the group commit's lanes never share a table (`ingest_service.writer`), so
the lock only ever waits for another process. On SQLite there is one process: nothing to take.
On the SQL warehouses the primary key refuses the second copy, and nothing here is used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


def table_turn_key(schema: str, table: str) -> int:
    """A stable signed 64-bit advisory lock key for one source's event table, namespaced to
    this product (the sync service's per-source locks hash other text)."""
    digest = hashlib.sha256(f"sendgrid-source event table:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def take_table_turns(connection: AsyncConnection, tables: Iterable[tuple[str, str]]) -> None:
    """Wait for, and hold until `connection`'s transaction ends, the turn of each (schema,
    table) to be written."""
    if connection.dialect.name != "postgresql":
        return
    for schema, table in sorted(set(tables)):
        await connection.execute(
            sa.select(sa.func.pg_advisory_xact_lock(table_turn_key(schema, table)))
        )
