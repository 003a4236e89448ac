"""Group commit: concurrent webhook requests share one transaction, and every request is
answered only after the transaction holding its events has committed.

A request hands its parsed batch to `EventWriter.write` and waits. The batch is split by
event table across the writer's lanes (one lane on SQLite). Each lane's task collects
submissions until `max_events` or `linger` is reached, writes them all with the fastest
bulk path the backend has, commits, and resolves each submission's future with its own
counts; the request is answered once all its parts are committed. If a write fails, every
request of the group gets the error (answered 503), so SendGrid resends and nothing is lost;
de-duplication absorbs whatever had in fact been written.

This module is the lanes: what goes into a commit, when, and the answers. What a commit
writes, table by table, is `shared.event_table_write`.

With ClickHouse as the warehouse (`WAREHOUSE_URL`), a group's event rows are inserted there
first, each table's insert acknowledged by ClickHouse, and then its `rejected` rows and
`webhook_stats` are committed on DATABASE_URL; only then are the requests answered. The same
transaction holds each table's turn (`shared.event_table_turns`), so receivers in other
processes write a table one after another. If the commit fails after ClickHouse took the rows,
the requests are answered 503 and SendGrid's resend finds them stored (counted as
duplicates), so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import sqlalchemy as sa
from clickhouse_driver.errors import Error as ClickHouseError
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ingest_service.write_paths import WritePaths
from shared.clickhouse_event_rows import ClickHouseEventRows, refuse_unstorable
from shared.db_errors import lost_write_race
from shared.event_inserts import insert_rejected
from shared.event_parsing import ParsedBatch
from shared.event_rows import SqlEventRows
from shared.event_table_turns import take_table_turns
from shared.event_table_write import Submission, WriteResult, stats_added, write_event_table
from shared.events import EVENT_TABLES
from shared.tables import source_tables, webhook_stats

log = logging.getLogger("sendgrid_source.ingest")

EVENTS_REJECTED = Counter(
    "sendgrid_source_events_rejected_total", "Events kept in `rejected`", ["schema"]
)
BATCH_EVENTS = Histogram(
    "sendgrid_source_commit_events",
    "Events per group commit",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000),
)
BATCH_REQUESTS = Histogram(
    "sendgrid_source_commit_requests",
    "Webhook requests sharing one group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)

COMMIT_RETRIES = Counter(
    "sendgrid_source_commit_retries_total",
    "Group commits written again after racing another writer on the same events",
)

_CONFLICT_RETRIES = 5
# Tables one group commit writes with no look-up (each under a savepoint), at most.
_SAVEPOINTS_PER_COMMIT = 32


class WriteFailed(Exception):
    """The events could not be committed; the request must not be answered 2xx."""


# A sending account's events are mostly processed, delivered, open and click (percent).
_USUAL_SHARE = {
    "processed": 26, "delivered": 25, "_open": 22, "click": 10, "deferred": 5, "bounce": 3,
    "dropped": 3, "unsubscribe": 2, "group_unsubscribe": 1.5, "spam_report": 1,
    "group_resubscribe": 0.5, "account_status_change": 0.1,
}  # fmt: skip


def lane_of_tables(lanes: int) -> dict[str, int]:
    """Each event table is written by one lane only, so two lanes never race on an id.
    Tables go to the lane with the least usual traffic so far, largest first."""
    loads = [0.0] * lanes
    assignment = {}
    for table in sorted(EVENT_TABLES, key=lambda name: -_USUAL_SHARE.get(name, 0)):
        lane = loads.index(min(loads))
        assignment[table] = lane
        loads[lane] += _USUAL_SHARE.get(table, 0)
    return assignment


class EventWriter:
    """Lanes of group commits. With more than one (`INGEST_WRITERS`, PostgreSQL), a
    request's events are split by table across the lanes, which commit independently; the
    request is answered once every part is committed. One lane's database round trips then
    overlap another's Python work, without the two ever writing the same table."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_events: int,
        linger_seconds: float,
        writers: int,
        insert_first_below: float,
        clickhouse: ClickHouseEventRows | None = None,
    ) -> None:
        self.engine = engine
        # The event tables' warehouse when it is not DATABASE_URL's.
        self.clickhouse = clickhouse
        self.max_events = max_events
        self.linger = linger_seconds
        self.writers = writers
        self._lanes: list[asyncio.Queue[Submission]] = [asyncio.Queue() for _ in range(writers)]
        self._lane_of = lane_of_tables(writers)
        # Events handed to write() and not yet answered: the receiver's backlog.
        self.pending_events = 0
        self.paths = WritePaths(threshold=insert_first_below)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(queue)) for queue in self._lanes]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self._lanes:
            while not queue.empty():
                queue.get_nowait().future.set_exception(WriteFailed("the service is stopping"))

    def _split(self, batch: ParsedBatch) -> dict[int, ParsedBatch]:
        """The batch's part for each lane that has something of it; rejected rows and an
        empty batch (its stats still count) go to the first lane."""
        parts: dict[int, ParsedBatch] = {}
        for table, records in batch.rows.items():
            part = parts.setdefault(
                self._lane_of.get(table, 0), ParsedBatch(received_at=batch.received_at)
            )
            part.rows[table] = records
        if batch.rejected or not parts:
            parts.setdefault(
                0, ParsedBatch(received_at=batch.received_at)
            ).rejected = batch.rejected
        return parts

    async def write(self, source_id: str, schema: str, batch: ParsedBatch) -> WriteResult:
        loop = asyncio.get_running_loop()
        if self.clickhouse is not None:
            refuse_unstorable(batch)
        self.pending_events += batch.event_count
        try:
            futures: list[asyncio.Future[WriteResult]] = []
            for lane, part in self._split(batch).items():
                future: asyncio.Future[WriteResult] = loop.create_future()
                await self._lanes[lane].put(Submission(source_id, schema, part, future))
                futures.append(future)
            # Every part is waited for, so no failure goes unretrieved; the first one wins.
            results = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            self.pending_events -= batch.event_count
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return WriteResult(
            sum(r.stored for r in results if isinstance(r, WriteResult)),
            sum(r.duplicates for r in results if isinstance(r, WriteResult)),
            sum(r.rejected for r in results if isinstance(r, WriteResult)),
        )

    async def _collect(self, queue: asyncio.Queue[Submission]) -> list[Submission]:
        group = [await queue.get()]
        events = group[0].batch.event_count
        deadline = asyncio.get_running_loop().time() + self.linger
        while events < self.max_events:
            try:
                submission = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    submission = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            group.append(submission)
            events += submission.batch.event_count
        return group

    async def _run(self, queue: asyncio.Queue[Submission]) -> None:
        while True:
            group = await self._collect(queue)
            try:
                await self._write_with_retries(group)
            except Exception as exc:
                log.warning(
                    "group commit failed; requests answered 503",
                    extra={"fields": {"error": type(exc).__name__, "requests": len(group)}},
                )
                failure = (
                    exc
                    if isinstance(exc, WriteFailed)
                    else WriteFailed(f"the database write failed ({type(exc).__name__})")
                )
                for submission in group:
                    if not submission.future.done():
                        submission.future.set_exception(failure)
                continue
            for submission in group:
                if not submission.future.done():
                    submission.future.set_result(
                        WriteResult(
                            submission.stored,
                            submission.duplicates,
                            len(submission.batch.rejected),
                        )
                    )

    async def _write_with_retries(self, group: list[Submission]) -> None:
        contended = False
        for attempt in range(_CONFLICT_RETRIES):
            for submission in group:
                submission.stored = submission.duplicates = 0
            try:
                await self._write(group, contended=contended)
                return
            except (DBAPIError, asyncpg.PostgresError) as exc:
                # Two writers storing the same new event at once: one commits, the other's
                # COPY hits the primary key (or they deadlock). Writing the group again is
                # safe: its look-up now finds the event and counts it as a duplicate.
                if not lost_write_race(exc) or attempt == _CONFLICT_RETRIES - 1:
                    raise
                contended = True
                COMMIT_RETRIES.inc()

    async def _write(self, group: list[Submission], *, contended: bool) -> None:
        BATCH_REQUESTS.observe(len(group))
        BATCH_EVENTS.observe(sum(s.batch.event_count for s in group))
        now = datetime.now(UTC)
        savepoints = 0
        async with self.engine.begin() as connection:
            if self.clickhouse is not None:
                await self._write_clickhouse(connection, group, contended=contended)
            # A fixed order of tables keeps concurrent writers from deadlocking.
            for schema in sorted({s.schema for s in group}):
                members = [s for s in group if s.schema == schema]
                tables = source_tables(schema)
                optimistic = self.paths.optimistic(schema)
                # On ClickHouse the event rows were written above.
                here = [] if self.clickhouse else sorted({t for s in members for t in s.batch.rows})
                for table_name in here:
                    # Each table written with no look-up holds a savepoint (a subtransaction)
                    # till the commit; PostgreSQL keeps 64 per transaction in shared memory.
                    savepoint = optimistic and savepoints < _SAVEPOINTS_PER_COMMIT
                    savepoints += savepoint
                    met_stored = await write_event_table(
                        SqlEventRows(connection),
                        tables.events[table_name],
                        members,
                        contended=contended,
                        optimistic=savepoint,
                    )
                    self.paths.observe(schema, met_stored)
                rejected = [row for s in members for row in s.batch.rejected]
                if rejected:
                    await insert_rejected(connection, tables.rejected, rejected, now)
                    EVENTS_REJECTED.labels(schema).inc(len(rejected))
            for source_id in sorted({s.source_id for s in group}):
                members = [s for s in group if s.source_id == source_id]
                await connection.execute(
                    sa.update(webhook_stats)
                    .where(webhook_stats.c.source_id == source_id)
                    .values(stats_added(members))
                )

    async def _write_clickhouse(
        self, connection: AsyncConnection, group: list[Submission], *, contended: bool
    ) -> None:
        """The group's event rows, each table's insert acknowledged by ClickHouse before the
        caller's transaction commits and the requests are answered. Each table is written in
        its turn among every receiver process (`shared.event_table_turns`), held until that
        commit, so two receivers never both store, and count, one event."""
        assert self.clickhouse is not None
        written = sorted({(s.schema, t) for s in group for t in s.batch.rows})
        await take_table_turns(connection, written)
        try:
            for schema, table_name in written:
                await write_event_table(
                    self.clickhouse,
                    source_tables(schema).events[table_name],
                    [s for s in group if s.schema == schema],
                    contended=contended,
                    optimistic=False,  # ClickHouse refuses no id: always looked up
                )
        except (ClickHouseError, OSError, EOFError) as exc:
            # Said apart from the control database's failures: it is the warehouse to check.
            raise WriteFailed(
                f"the ClickHouse warehouse did not take them ({type(exc).__name__})"
            ) from exc
