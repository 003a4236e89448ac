"""One sync run of one source: choose the API, read each collection, upsert, keep the ledger.

Errors are mapped here and nowhere else: a 401 fails the run, a 403 marks its collection
`forbidden`, any other SendGrid failure fails its collection, and the others go on.

Collections are read concurrently, at most SYNC_CONCURRENCY at a time and with at most as
many requests in flight (the client's bound), the contacts export first: its job is pending
at SendGrid for most of a full sync, and every other collection is read meanwhile. Each
collection's ledger row is written as it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clickhouse import ClickHouse
from shared.clickhouse_event_rows import ClickHouseEventRows
from shared.clock import utcnow
from shared.collections import BY_NAME
from shared.event_counts import EventCounts, event_counts
from shared.reconciliation import Reconciliation
from shared.settings import Settings
from shared.source_rows import Source, SourceRows
from shared.source_secrets import SourceSecrets
from shared.tables import source_tables
from shared.webhook_check import WebhookCheck
from sync_service.api_detection import choose_api
from sync_service.background import heartbeat
from sync_service.client import Clock, RetryPolicy, SendGridClient, Sleep
from sync_service.collection_plan import Planned, needs_api_choice, plan_collections
from sync_service.collection_reader import CollectionReader, ReadContext, ReadPolicy, ReadScope
from sync_service.contacts_export import ExportPolicy
from sync_service.cursors import Cursor, load_cursor, save_cursor
from sync_service.errors import AuthRejected, SendGridError, SendGridForbidden
from sync_service.ledger import (
    CollectionResult,
    RunStatus,
    beat,
    finish_run,
    overall_status,
    record_collection,
)
from sync_service.object_store import ObjectStore, object_store
from sync_service.run_claims import RunClaim

log = logging.getLogger("sendgrid_source.sync")

# Called as (collection, rows written so far, finished) for live progress displays.
Progress = Callable[[str, int, bool], None]


@dataclass
class SyncDependencies:
    """What a run needs; created once per service, shared by every run."""

    engine: AsyncEngine
    http: httpx.AsyncClient
    settings: Settings
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    export: ExportPolicy = field(default_factory=ExportPolicy)
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.time
    # Reading a source and decrypting its key need the database and SECRET_KEY only.
    sources: SourceRows = field(init=False)
    secrets: SourceSecrets = field(init=False, repr=False)
    # The webhook check and the reconciliation against SendGrid's daily statistics, run after
    # every run's collections (tests replace their clocks).
    webhook_check: WebhookCheck = field(init=False, repr=False)
    reconciliation: Reconciliation = field(init=False, repr=False)
    # The event tables' warehouse when it is ClickHouse (WAREHOUSE_URL): backfills write there.
    clickhouse: ClickHouseEventRows | None = field(init=False, repr=False)
    # The event tables' counts (the reconciliation's), from the same warehouse.
    counts: EventCounts = field(init=False, repr=False)
    # The object tables' warehouse: the control database's schemas or ClickHouse.
    objects: ObjectStore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        url = self.settings.clickhouse_url
        self.clickhouse = ClickHouseEventRows(ClickHouse(url)) if url else None
        self.sources = SourceRows(self.engine)
        self.secrets = SourceSecrets(self.settings.secret_key)
        self.webhook_check = WebhookCheck(self.engine, self.settings, self.http, self.secrets)
        self.counts = event_counts(self.settings, self.engine)
        self.objects = object_store(self.settings, self.engine)
        self.reconciliation = Reconciliation(
            self.engine, self.settings, self.http, self.secrets, self.counts
        )

    def client_for(self, source: Source) -> SendGridClient:
        """The source's view of SendGrid: its region, its key, at most SYNC_CONCURRENCY
        requests in flight."""
        return SendGridClient(
            self.http,
            base_url=self.settings.sendgrid_base_url(source.region),
            api_key=self.secrets.api_key(source),
            policy=self.retry,
            sleep=self.sleep,
            clock=self.clock,
            max_in_flight=self.settings.SYNC_CONCURRENCY,
        )


@dataclass
class RunOutcome:
    run_id: str
    status: RunStatus
    error: str | None
    collections: list[CollectionResult]


def _no_progress(collection: str, rows: int, finished: bool) -> None:
    return None


# The collection read from the contacts export, which is started before the others.
EXPORTED = "recipients"

_END = object()
Page = TypeVar("Page")


# Pages read ahead of the writer: several, so that reading goes on while the database works
# through a page's COPY (measured 2-20% more contacts per second than one page ahead, for
# about 25 MB more at 5,000 contacts a page).
_PAGES_AHEAD = 4


async def read_ahead(pages: AsyncIterator[Page]) -> AsyncIterator[Page]:
    """Pages in order, the next one read (downloaded, parsed, built) while the caller writes
    this one, so the database works while the sync parses. A reader's error comes after the
    pages read before it, so those are still written."""
    queue: asyncio.Queue[Page | Exception | object] = asyncio.Queue(maxsize=_PAGES_AHEAD)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        except Exception as exc:
            await queue.put(exc)
            return
        await queue.put(_END)

    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


async def _stored_objects(
    deps: SyncDependencies, table: sa.Table, reader: CollectionReader
) -> dict[str, Any]:
    if not reader.uses_stored:
        return {}
    return await deps.objects.stored_raw(table, reader.api)


async def _read_context(
    deps: SyncDependencies,
    source: Source,
    table: sa.Table,
    reader: CollectionReader,
    scope: ReadScope,
) -> ReadContext:
    cursor = Cursor()
    if reader.uses_cursor:
        cursor = await load_cursor(deps.engine, source.id, reader.table)
    return ReadContext(
        utcnow(),
        deps.export,
        ReadPolicy.of(deps.settings),
        cursor,
        await _stored_objects(deps, table, reader),
        scope,
    )


async def sync_collection(
    deps: SyncDependencies,
    source: Source,
    client: SendGridClient,
    reader: CollectionReader,
    note: str | None,
    progress: Progress,
    scope: ReadScope | None = None,
) -> CollectionResult:
    """Read one collection and write it; `AuthRejected` propagates. `scope` is the reader's
    report, for a caller that watches it as the collection is read."""
    table = source_tables(source.schema_name).objects[reader.table]
    progress(reader.table, 0, False)
    context = await _read_context(deps, source, table, reader, scope or ReadScope())
    started = context.synced_at
    result = CollectionResult(reader.table, reader.api, "succeeded", started_at=started)
    try:
        async with deps.objects.listing(table, started) as listing:
            # Each page returns once its objects are stored (in ClickHouse: acknowledged);
            # the cursor and the ledger on DATABASE_URL come after the pages.
            async for page in read_ahead(reader.read(client, context)):
                result.rows_upserted += await listing.write(page)
                progress(reader.table, result.rows_upserted, False)
            # Reached only when the read ended: a SendGrid error skips both.
            if context.scope.complete:
                result.rows_deleted = await listing.mark_missing_deleted(utcnow())
            if context.scope.next_cursor is not None:
                await save_cursor(deps.engine, source.id, reader.table, context.scope.next_cursor)
    except SendGridForbidden as exc:
        result.status, result.message = "forbidden", _forbidden(exc, reader)
    except AuthRejected:
        raise
    except SendGridError as exc:
        result.status = "failed"
        result.message = (
            f"{exc} ({result.rows_upserted} rows were written before the failure; "
            "nothing was marked deleted)"
        )
    else:
        if result.rows_upserted == 0 and context.scope.complete:
            result.status = "empty"
            said = reader.nothing_found
        else:
            said = f"read from {reader.endpoint} ({listing.counts.describe()})"
        result.message = "; ".join(part for part in (said, context.scope.window, note) if part)
    result.finished_at = utcnow()
    progress(reader.table, result.rows_upserted, True)
    return result


def _forbidden(exc: SendGridForbidden, reader: CollectionReader) -> str:
    """The refusal, with the scopes the collection needs (shared.collections)."""
    scopes = " and ".join(BY_NAME[reader.table].scopes)
    return f"{exc}; {reader.table} needs the {scopes} scope"


async def _under_way(scope: ReadScope, task: asyncio.Task[None]) -> None:
    """Until the collection's first requests are out, or it has ended (or failed) without."""
    waiting = asyncio.ensure_future(scope.under_way.wait())
    try:
        await asyncio.wait((waiting, task), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()


async def _record_planned(
    deps: SyncDependencies, run_id: str, planned: Planned
) -> CollectionResult:
    assert planned.status is not None, "a collection without a reader has a status"
    now = utcnow()
    result = CollectionResult(
        planned.collection.name, None, planned.status, 0, 0, planned.message, now, now
    )
    await record_collection(deps.engine, run_id, result)
    return result


async def _sync_collections(
    deps: SyncDependencies, source: Source, run_id: str, progress: Progress
) -> list[CollectionResult]:
    concurrency = deps.settings.SYNC_CONCURRENCY
    client = deps.client_for(source)
    choice = await choose_api(client) if needs_api_choice(source.collections) else None
    plan = plan_collections(choice, source.collections)
    results: dict[str, CollectionResult] = {}
    for planned in plan:
        if planned.reader is None:
            results[planned.collection.name] = await _record_planned(deps, run_id, planned)
    slots = asyncio.Semaphore(concurrency)

    async def read(planned: Planned, scope: ReadScope) -> None:
        assert planned.reader is not None
        async with slots:
            result = await sync_collection(
                deps, source, client, planned.reader, planned.note, progress, scope
            )
            # Recorded as each one ends, so the ledger shows progress while the run goes on.
            await record_collection(deps.engine, run_id, result)
        results[result.collection] = result

    to_read = [planned for planned in plan if planned.reader is not None]
    try:
        async with asyncio.TaskGroup() as group:
            # The export first: its job is then pending at SendGrid while the others are read.
            for planned in to_read:
                if planned.collection.name == EXPORTED:
                    scope = ReadScope()
                    export = group.create_task(read(planned, scope))
                    await _under_way(scope, export)
            for planned in to_read:
                if planned.collection.name != EXPORTED:
                    group.create_task(read(planned, ReadScope()))
    except BaseExceptionGroup as errors:
        # One cause for the run: a rejected key if that is what happened, else the first.
        rejected = errors.subgroup(AuthRejected)
        raise (rejected or errors).exceptions[0] from None
    return [results[planned.collection.name] for planned in plan]


async def check_webhook(deps: SyncDependencies, source: Source) -> None:
    """The webhook check after a run's collections. It records its own SendGrid errors as
    findings; anything else is logged here, and never fails the run."""
    try:
        await deps.webhook_check.check(await deps.sources.get(source.id))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("webhook check failed", extra={"fields": {"source": source.name}})


async def check_completeness(deps: SyncDependencies, source: Source) -> None:
    """The reconciliation after a run's collections. It records its own SendGrid errors on
    the source; anything else is logged here, and never fails the run."""
    try:
        await deps.reconciliation.reconcile(await deps.sources.get(source.id))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("completeness check failed", extra={"fields": {"source": source.name}})


async def execute_run(
    deps: SyncDependencies, source: Source, claim: RunClaim, progress: Progress | None = None
) -> RunOutcome:
    """Run a claimed sync to the end, record it in the ledger, and release the claim."""
    results: list[CollectionResult] = []
    error: str | None = None
    status: RunStatus = "failed"
    try:
        async with heartbeat(lambda: beat(deps.engine, claim.run_id), claim.run_id):
            results = await _sync_collections(deps, source, claim.run_id, progress or _no_progress)
            status = overall_status(results)
            await check_webhook(deps, source)
            await check_completeness(deps, source)
    except AuthRejected as exc:
        error = str(exc)
    except SendGridError as exc:
        error = f"could not tell which API to read: {exc}"
    except asyncio.CancelledError:
        error = "cancelled: the sync service shut down during the run"
        raise
    except Exception as exc:
        log.exception("sync run crashed", extra={"fields": {"run_id": claim.run_id}})
        error = f"internal error: {type(exc).__name__}: {exc}"
    finally:
        try:
            await finish_run(deps.engine, claim.run_id, status, error)
        finally:
            await claim.release()
    log.info(
        "sync run finished",
        extra={"fields": {"run_id": claim.run_id, "source": source.name, "status": status}},
    )
    return RunOutcome(claim.run_id, status, error, results)
