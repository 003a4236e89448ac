"""Storing events that did not come through the webhook's request path (a backfill from Email
Logs) with the webhook's own validation and writer, in one transaction per call.

The events are parsed as a webhook body would be (`event_parsing.parse_body`: the same
models, the same `rejected` rows for what fails them) and written table by table by
`event_table_write.write_event_table`, the group commit's own step, on the look-up path that
expects stored ids (a backfill overlaps the webhook by design). Unlike a webhook request they
do not move `webhook_stats`: those count what SendGrid's webhook delivered, and the silence
check reads its last event time.

With ClickHouse as the warehouse (`clickhouse`), the event rows are written there, each table
acknowledged and in its turn among the writers, before the transaction that keeps the
`rejected` rows commits, as the group commit does (`ingest_service.writer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clickhouse_event_rows import ClickHouseEventRows, refuse_unstorable
from shared.db_errors import lost_write_race
from shared.event_inserts import insert_rejected
from shared.event_parsing import RejectedRow, parse_body
from shared.event_records import Origin
from shared.event_rows import EventRows, SqlEventRows
from shared.event_table_turns import take_table_turns
from shared.event_table_write import Submission, WriteResult, write_event_table
from shared.json_codec import canonical_json, dump_json
from shared.tables import source_tables

# Another writer storing the same new events at the same moment: written again, as the group
# commit does (its look-up then finds them stored).
_RACE_RETRIES = 5


@dataclass(frozen=True)
class StoredCounts:
    stored: int
    duplicates: int
    rejected: int


async def store_events(
    engine: AsyncEngine,
    schema: str,
    events: Sequence[Mapping[str, Any]],
    *,
    origin: Origin,
    received_at: datetime,
    rejected: Sequence[tuple[str | None, str, Mapping[str, Any]]] = (),
    clickhouse: ClickHouseEventRows | None = None,
) -> StoredCounts:
    """Validate and store `events` (Event Webhook shape) in the source's tables, each once;
    `rejected` are (event type, reason, payload) kept in `rejected` as they are.
    `clickhouse`: the event tables' warehouse, when it is not `engine`'s database."""
    body = dump_json(list(events)).encode()
    batch = parse_body(body, received_at, max_events=len(events), origin=origin)
    batch.rejected.extend(
        RejectedRow.of(reason, canonical_json(dict(payload)).encode(), kind)
        for kind, reason, payload in rejected
    )
    if clickhouse is not None:
        refuse_unstorable(batch)
    tables = source_tables(schema)
    future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
    submission = Submission("", schema, batch, future)
    for attempt in range(_RACE_RETRIES):
        submission.stored = submission.duplicates = 0
        try:
            async with engine.begin() as connection:
                rows: EventRows = SqlEventRows(connection)
                if clickhouse is not None:
                    # Each table in its turn among the receivers (shared.event_table_turns).
                    await take_table_turns(connection, [(schema, t) for t in batch.rows])
                    rows = clickhouse
                for table_name in sorted(batch.rows):
                    await write_event_table(
                        rows,
                        tables.events[table_name],
                        [submission],
                        contended=True,
                        optimistic=False,
                    )
                if batch.rejected:
                    await insert_rejected(connection, tables.rejected, batch.rejected, received_at)
        except (DBAPIError, asyncpg.PostgresError) as exc:
            if not lost_write_race(exc) or attempt == _RACE_RETRIES - 1:
                raise
            continue
        break
    return StoredCounts(submission.stored, submission.duplicates, len(batch.rejected))
