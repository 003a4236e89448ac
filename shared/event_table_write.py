"""Inside one group commit: each event table's rows written exactly once, and each source's
`webhook_stats`. `ingest_service.writer` decides what goes into a commit and when; this
module is what the commit writes.

Each submission counts what its own events came to (stored, duplicates), so every request
of a shared commit is answered with its own numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter

from shared.column_types import UTCDateTime
from shared.event_parsing import ParsedBatch
from shared.event_records import ID_AT, RAW_AT, EventRecord
from shared.event_rows import EventRows
from shared.json_codec import canonical_json, load_json
from shared.tables import webhook_stats

EVENTS_STORED = Counter(
    "sendgrid_source_events_stored_total", "Events written", ["schema", "table"]
)
EVENTS_DUPLICATE = Counter(
    "sendgrid_source_events_duplicate_total", "Events already stored (absorbed)", ["schema"]
)
TABLE_WRITES = Counter(
    "sendgrid_source_table_writes_total",
    "One event table's rows written in a group commit, by the path first taken",
    ["path"],
)
INSERTS_REFUSED = Counter(
    "sendgrid_source_inserts_refused_total",
    "Inserts with no look-up rolled back because a row's id was stored already",
)


@dataclass(frozen=True)
class WriteResult:
    """What a request's events came to, once committed."""

    stored: int
    duplicates: int
    rejected: int


@dataclass
class Submission:
    """One request's part for one lane, and what writing it came to."""

    source_id: str
    schema: str
    batch: ParsedBatch
    future: asyncio.Future[WriteResult]
    stored: int = 0
    duplicates: int = 0


def stats_added(members: Sequence[Submission]) -> dict[str, Any]:
    """One source's `webhook_stats` counts plus what `members` committed. `last_event_at`
    is when the latest request that stored an event was received: a body of duplicates,
    of refused events or refused as a whole, or an empty one, leaves it as it was. Lanes
    commit independently, so an earlier request may commit later; it never moves back."""
    stats = webhook_stats.c
    added: dict[str, Any] = {
        "events_stored": stats.events_stored + sum(s.stored for s in members),
        "duplicates": stats.duplicates + sum(s.duplicates for s in members),
        "rejected": stats.rejected + sum(len(s.batch.rejected) for s in members),
    }
    received = [s.batch.received_at for s in members if s.stored and s.batch.received_at]
    if received:
        latest = max(received)
        added["last_event_at"] = sa.case(
            (
                sa.or_(stats.last_event_at.is_(None), stats.last_event_at < latest),
                sa.literal(latest, UTCDateTime),
            ),
            else_=stats.last_event_at,
        )
    return added


async def write_event_table(
    rows: EventRows,
    table: sa.Table,
    members: Sequence[Submission],
    *,
    contended: bool,
    optimistic: bool,
) -> bool:
    """Insert one table's rows from every submission of the group, exactly once each;
    returns whether some row's id was stored already (what `optimistic` bets against).
    `rows` is the warehouse the table lives in (`shared.event_rows`).

    `optimistic`: first try inserting every row with no look-up
    (`insert_all_unless_stored`); only when that is refused are the stored ids looked up.
    A row whose id is already stored (or appears earlier in the group) is a duplicate when
    its content is the same. When the content differs, SendGrid reused an `sg_event_id` for
    another event (its own docs do this); that event is kept under the id plus a content
    hash, so nothing a sender sent is dropped. A re-keyed row can only collide with itself,
    so this ends after at most two rounds. Contents are compared only for rows that met a
    stored id, and only between two copies of one `origin` (see `rows_differing_from_stored`).
    """
    pending: dict[str, tuple[EventRecord, Submission]] = {}
    repeats: list[tuple[EventRecord, Submission]] = []
    for submission in members:
        for record in submission.batch.rows.get(table.name, ()):
            if record[ID_AT] in pending:
                repeats.append((record, submission))
            else:
                pending[record[ID_AT]] = (record, submission)
    met_stored = False
    first_round = True
    optimistic = optimistic and not contended
    TABLE_WRITES.labels("no_lookup" if optimistic else "lookup").inc()
    while pending:
        records = [record for record, _ in pending.values()]
        inserted = None
        if first_round and optimistic:
            if await rows.insert_all_unless_stored(table, records):
                inserted = set(pending)
            else:
                INSERTS_REFUSED.inc()
        if inserted is None:
            inserted = await rows.insert_new_rows(table, records, contended=contended)
            met_stored = met_stored or (first_round and len(inserted) < len(pending))
        first_round = False
        for record_id in inserted:
            pending[record_id][1].stored += 1
        EVENTS_STORED.labels(table.schema or "", table.name).inc(len(inserted))
        # Everything not inserted now has its id stored (by this group or before it).
        candidates = [pending[record_id] for record_id in pending.keys() - inserted] + repeats
        differing = await rows.rows_differing_from_stored(
            table, [record for record, _ in candidates]
        )
        pending, repeats = {}, []
        for position, (record, submission) in enumerate(candidates):
            if position in differing:
                content = canonical_json(load_json(record[RAW_AT].encode()))
                rekeyed_id = f"{record[ID_AT]}#{_content_hash(content)}"
                if rekeyed_id not in pending:
                    pending[rekeyed_id] = ((rekeyed_id, *record[1:]), submission)
                    continue
            submission.duplicates += 1
            EVENTS_DUPLICATE.labels(table.schema or "").inc()
    return met_stored


def _content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:16]
