"""Sync benchmark: a whole Marketing Campaigns sync against tests/fake_sendgrid/server, against the
write path's limit (raw COPY / executemany of the same rows into the same `recipients` table),
in the same run.

The fake runs as its own process on 127.0.0.1 and serves N contacts through the export job
(gzip CSV in several files, ready `EXPORT_SECONDS` after it was started), 1,000 lists, 500
single sends and every other collection (suppressions, groups and members, templates and
versions, senders, statistics), with pages, rate-limit headers and an occasional 429. Each
sync runs through the sync service's runner in a child process (`python -m bench.sync
--child`), so its peak RSS is its own. The runner is used as deployed except for the export
poll interval (at most 0.5 s, so the job is seen ready within half a second). The recipients
rate is measured from the first export download to the end of the collection (rows written,
missing ones soft-deleted).

The whole first sync is compared with two references measured in the same run: the export
job's own time (from its start request to the first download, i.e. the file being ready) and
the time to download and write the contacts alone (a source syncing `recipients` only). Every
other collection is read while the export is pending, so the whole sync should take little
more than the two together; the same sync with SYNC_CONCURRENCY=1 shows what reading the
collections one after the other costs.

    python -m bench.sync --database-url postgresql+asyncpg://… --contacts 100000
    BENCH_PROFILE=/tmp/prof python -m bench.sync …   # py-spy records each sync (raw format)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from clickhouse_driver import Client
from sqlalchemy.engine import make_url

from bench.ingest import ADMIN_TOKEN, SECRET_KEY, free_port, peak_rss_mb
from shared import warehouse
from shared.clickhouse import ClickHouseTarget
from shared.clickhouse_object_tables import VERSION, object_table_statements
from shared.db import create_engine, sqlite_schema_path
from shared.migrate import upgrade_control_schema
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings, load_settings
from shared.tables import source_tables
from sync_service.contact_records import ContactRecords
from sync_service.export_files import iterate_csv_value_batches
from sync_service.listing_writer import BATCH_SIZE
from sync_service.object_records import Records, with_content_hash
from tests.fake_sendgrid.contacts import GeneratedContacts

# `contacts` for `run`: the quick run, and the full one (1M against 100k is the RSS target).
QUICK_CONTACTS = (20_000,)
FULL_CONTACTS = (100_000, 1_000_000)
LISTS = 1000
SINGLE_SENDS = 500
EXPORT_FILES = 4
EDITED_SHARE = 0.01
# How long the fake's export job stays pending after it is started.
EXPORT_SECONDS = 10.0
# One 429 every this many API requests, like an account that brushes its limit now and then.
RATE_LIMIT_EVERY = 250
# The fake's only custom field (see its field definitions).
FIELD_TYPES = {"num_orders": "Number"}


@dataclass
class SyncPass:
    """One sync run, as the child process saw it."""

    status: str
    upserted: dict[str, int]
    recipients: int
    recipients_seconds: float  # first export download -> recipients written and soft-deleted
    recipients_cpu_seconds: float  # CPU the sync process used in that time
    wall_seconds: float  # the whole run, every collection
    rss_mb: float
    export_seconds: float = 0.0  # the export's start request -> its first download

    @property
    def recipients_per_s(self) -> float:
        return self.recipients / self.recipients_seconds if self.recipients_seconds else 0.0


@dataclass
class OverlapFigures:
    """The whole first sync against the export and the contacts alone (see the module)."""

    whole: SyncPass  # every collection, SYNC_CONCURRENCY as deployed
    sequential: SyncPass  # every collection, one at a time
    alone: SyncPass  # the contacts alone

    @property
    def reference_seconds(self) -> float:
        """Export ready, then the contacts downloaded and written: the least a whole sync
        can take."""
        return self.whole.export_seconds + self.alone.recipients_seconds


@dataclass
class SyncFigures:
    backend: str
    contacts: int
    export_files: int
    first: SyncPass
    resync: SyncPass
    edited: int  # contacts the fake changed between the two syncs
    stored: int  # recipients in the table after the re-sync, not deleted
    edits_stored: int  # of them, rows that carry the edit
    baseline_contacts: int
    baseline: SyncPass  # a first sync of contacts / 10, for the RSS comparison
    limit_rows_per_s: float  # the mean of the two below
    limit_spread: tuple[float, float]  # measured before the first sync, after the re-sync
    overlap: OverlapFigures


# --- the child: one sync through the runner --------------------------------------------------


async def _child(source_name: str, out: Path) -> None:
    from shared.settings import get_settings
    from sync_service.app import HTTP_TIMEOUT
    from sync_service.contacts_export import ExportPolicy
    from sync_service.runner import SyncDependencies
    from sync_service.service import SyncService

    settings = get_settings()
    marks: dict[str, float] = {}

    async def on_request(request: httpx.Request) -> None:
        if request.url.path == "/v3/marketing/contacts/exports" and request.method == "POST":
            marks["export"] = time.perf_counter()
        if request.url.path.startswith("/downloads/") and "download" not in marks:
            marks["download"], marks["download_cpu"] = time.perf_counter(), time.process_time()

    def on_progress(collection: str, rows: int, finished: bool) -> None:
        if collection == "recipients" and finished:
            marks["recipients_done"], marks["recipients_cpu"] = (
                time.perf_counter(),
                time.process_time(),
            )

    engine = create_engine(settings.DATABASE_URL)
    try:
        async with httpx.AsyncClient(
            timeout=HTTP_TIMEOUT, event_hooks={"request": [on_request]}
        ) as http:
            export = ExportPolicy(poll_initial=0.1, poll_max=0.5)
            deps = SyncDependencies(engine, http, settings, export=export)
            source = await deps.sources.find(source_name)
            started = time.perf_counter()
            outcome = await SyncService(deps).run(source.id, "manual", progress=on_progress)
            wall = time.perf_counter() - started
    finally:
        await engine.dispose()
    if outcome is None:
        raise RuntimeError("a sync of the benchmark source was already running")
    upserted = {result.collection: result.rows_upserted for result in outcome.collections}
    result = SyncPass(
        status=outcome.status if outcome.error is None else f"{outcome.status}: {outcome.error}",
        upserted=upserted,
        recipients=upserted.get("recipients", 0),
        recipients_seconds=marks.get("recipients_done", 0.0) - marks.get("download", 0.0),
        recipients_cpu_seconds=marks.get("recipients_cpu", 0.0) - marks.get("download_cpu", 0.0),
        wall_seconds=wall,
        rss_mb=peak_rss_mb(os.getpid()),
        export_seconds=marks.get("download", 0.0) - marks.get("export", 0.0),
    )
    await asyncio.to_thread(out.write_text, json.dumps(asdict(result)))


# --- the parent ------------------------------------------------------------------------------


class FakeSendGridProcess:
    """tests/fake_sendgrid/server.py as its own process on a free port."""

    def __init__(self, contacts: int, log: Path, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_sendgrid.server", "--port", str(self.port),
             "--contacts", str(contacts), "--lists", str(LISTS),
             "--single-sends", str(SINGLE_SENDS), "--export-files", str(EXPORT_FILES),
             "--rate-limit-every", str(RATE_LIMIT_EVERY),
             "--export-seconds", str(EXPORT_SECONDS), *extra],
            stdout=self._log, stderr=self._log,
        )  # fmt: skip

    async def wait_ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(300):
                try:
                    await client.get("/fake/ready")  # any answer, even a 404, means it is up
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("the fake SendGrid did not start")

    async def edit_contacts(self, share: float) -> int:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.post("/fake/contacts/edit", params={"share": share})
            response.raise_for_status()
            return int(response.json()["edited"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self._log.close()


def _settings(
    database_url: str, workdir: Path, api_url: str, warehouse_url: str | None = None
) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        DATA_DIR=workdir,
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=SECRET_KEY,
        SENDGRID_API_URL=api_url,
        WAREHOUSE_URL=warehouse_url,
    )


async def _register(settings: Settings, name: str, collections: list[str] | None = None) -> str:
    """A source whose key the fake accepts (its scopes answer is real HTTP); returns its schema."""
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with httpx.AsyncClient() as http:
            registry = SourceRegistry(engine, settings, http)
            request = SourceCreate(name=name, api_key="SG.bench.key", collections=collections)
            source, _ = await registry.create(request)
    finally:
        await engine.dispose()
    return source.schema_name


async def _sync(
    settings: Settings, workdir: Path, source: str, label: str, concurrency: int | None = None
) -> SyncPass:
    out = workdir / f"sync-{label}.json"
    env = os.environ | {
        "SYNC_CONCURRENCY": str(concurrency or settings.SYNC_CONCURRENCY),
        "DATABASE_URL": settings.DATABASE_URL,
        "DATA_DIR": str(workdir),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "SENDGRID_API_URL": settings.SENDGRID_API_URL or "",
        "LOG_LEVEL": "WARNING",
    }
    if settings.WAREHOUSE_URL:
        env["WAREHOUSE_URL"] = settings.WAREHOUSE_URL
    with (workdir / f"sync-{label}.log").open("w") as log:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.sync", "--child", source, str(out),
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        # BENCH_PROFILE=<dir>: py-spy samples the sync from start to end.
        profile = os.environ.get("BENCH_PROFILE")
        spy = None
        if profile:
            backend = "postgresql" if settings.DATABASE_URL.startswith("postgresql") else "sqlite"
            spy = subprocess.Popen(
                ["py-spy", "record", "-p", str(child.pid), "-r", "50", "--format", "raw",
                 "-o", f"{profile}/sync-{label}-{backend}.txt"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        code = await child.wait()
        if spy is not None:
            spy.wait(60)
    if code != 0:
        tail = (workdir / f"sync-{label}.log").read_text()[-2000:]
        raise RuntimeError(f"the {label} sync exited with {code}:\n{tail}")
    figures = SyncPass(**json.loads(out.read_text()))
    if not figures.status.startswith("succeeded"):
        raise RuntimeError(f"the {label} sync did not succeed: {figures.status}")
    return figures


async def _stored(settings: Settings, schema: str) -> tuple[int, int]:
    """Live recipients, and how many of them carry the fake's edit."""
    engine = create_engine(settings.DATABASE_URL)
    recipients = source_tables(schema).objects["recipients"]
    try:
        async with engine.connect() as connection:
            live = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(recipients)
                .where(recipients.c.deleted_at.is_(None))
            )
            edited = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(recipients)
                .where(recipients.c.first_name.like("First%-r%"))
            )
    finally:
        await engine.dispose()
    return int(live or 0), int(edited or 0)


# --- the limit: raw COPY / executemany of the same rows --------------------------------------


async def _gzip_chunks(contacts: GeneratedContacts, part: int) -> AsyncIterator[bytes]:
    for chunk in contacts.gzip_file(part, EXPORT_FILES):
        yield chunk


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return value


async def _write_limit_csv(contacts: int, path: Path, table: sa.Table) -> int:
    """The first sync's rows, exactly as the product builds them from the same export files,
    as CSV in the table's column order (an empty cell is NULL)."""
    generated = GeneratedContacts(contacts)
    synced_at = datetime.now(UTC)
    columns = [column.name for column in table.columns]
    rows = 0
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        for part in range(EXPORT_FILES):
            async for batch in iterate_csv_value_batches(_gzip_chunks(generated, part)):
                builder = ContactRecords(batch.header, FIELD_TYPES, synced_at)
                built = Records(ContactRecords.columns, builder.records(batch.records))
                hashed = with_content_hash(table, built)
                for record in hashed.values:
                    row = dict(zip(hashed.columns, record, strict=True))
                    writer.writerow([_cell(row[name]) for name in columns])
                    rows += 1
    return rows


def _csv_batches(path: Path, size: int) -> Iterator[list[tuple[Any, ...]]]:
    with path.open(newline="") as file:
        batch: list[tuple[Any, ...]] = []
        for values in csv.reader(file):
            batch.append(tuple(value if value != "" else None for value in values))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


async def _copy_limit(settings: Settings, workdir: Path, schema: str, contacts: int) -> float:
    """The write path's ceiling for the same rows into a fresh `recipients` table: raw COPY
    (PostgreSQL) or executemany (SQLite) in one transaction; only the writing is timed."""
    engine = create_engine(settings.DATABASE_URL)
    async with engine.begin() as connection:
        await warehouse.create_source_schema(connection, schema)
    await engine.dispose()
    table = source_tables(schema).objects["recipients"]
    columns = [column.name for column in table.columns]
    path = workdir / "recipients.csv"
    rows = await _write_limit_csv(contacts, path, table)
    if settings.is_sqlite:
        db = sqlite3.connect(make_url(settings.DATABASE_URL).database or "")
        db.execute(
            f"ATTACH DATABASE ? AS {schema}",
            (str(sqlite_schema_path(settings.DATABASE_URL, schema)),),
        )
        statement = (
            f"INSERT INTO {schema}.recipients ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        elapsed = 0.0
        for batch in _csv_batches(path, 50_000):  # read untimed, a batch at a time
            started = time.perf_counter()
            db.executemany(statement, batch)
            elapsed += time.perf_counter() - started
        started = time.perf_counter()
        db.commit()
        elapsed += time.perf_counter() - started
        db.close()
    else:
        dsn = settings.DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        started = time.perf_counter()
        async with connection.transaction():
            await connection.copy_to_table(
                "recipients", schema_name=schema, source=path, columns=columns, format="csv"
            )
        elapsed = time.perf_counter() - started
        await connection.close()
    path.unlink()
    return rows / elapsed


# --- the benchmark ---------------------------------------------------------------------------


async def _baseline(database_url: str, workdir: Path, contacts: int, name: str) -> SyncPass:
    fake = FakeSendGridProcess(contacts, workdir / "fake-baseline.log")
    try:
        await fake.wait_ready()
        settings = _settings(database_url, workdir, fake.url)
        await _register(settings, name)
        return await _sync(settings, workdir, name, "baseline")
    finally:
        fake.stop()


async def run(database_url: str, workdir: Path, *, contacts: int) -> SyncFigures:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    await asyncio.to_thread(upgrade_control_schema, database_url)
    # Names of its own, so several runs can share one database.
    tag = uuid.uuid4().hex[:8]
    name = f"bench sync {tag}"
    baseline_contacts = max(1000, contacts // 10)
    baseline = await _baseline(database_url, workdir, baseline_contacts, f"{name} baseline")
    fake = FakeSendGridProcess(contacts, workdir / "fake.log")
    try:
        await fake.wait_ready()
        settings = _settings(database_url, workdir, fake.url)
        schema = await _register(settings, name)
        # The limit is measured right before the first sync and after the re-sync: this
        # machine's speed drifts over minutes, and the mean of both keeps the ratio honest.
        limit_before = await _copy_limit(settings, workdir, f"bench_limit_{tag}_a", contacts)
        first = await _sync(settings, workdir, name, "first")
        edited = await fake.edit_contacts(EDITED_SHARE)
        resync = await _sync(settings, workdir, name, "resync")
        # The references of the overlap, first syncs of sources of their own: the contacts
        # alone, and every collection one at a time.
        await _register(settings, f"{name} alone", ["recipients"])
        alone = await _sync(settings, workdir, f"{name} alone", "alone")
        await _register(settings, f"{name} sequential")
        sequential = await _sync(settings, workdir, f"{name} sequential", "sequential", 1)
    finally:
        fake.stop()
    stored, edits_stored = await _stored(settings, schema)
    limit_after = await _copy_limit(settings, workdir, f"bench_limit_{tag}_b", contacts)
    return SyncFigures(
        backend=backend,
        contacts=contacts,
        export_files=EXPORT_FILES,
        first=first,
        resync=resync,
        edited=edited,
        stored=stored,
        edits_stored=edits_stored,
        baseline_contacts=baseline_contacts,
        baseline=baseline,
        limit_rows_per_s=(limit_before + limit_after) / 2,
        limit_spread=(limit_before, limit_after),
        overlap=OverlapFigures(first, sequential, alone),
    )


# --- ClickHouse: the first sync against a raw INSERT of the same rows -------------------------


@dataclass
class ClickHouseSyncFigures:
    contacts: int
    first: SyncPass
    stored: int  # live recipients in ClickHouse after the sync (read with FINAL)
    limit_rows_per_s: float  # the mean of the two below
    limit_spread: tuple[float, float]  # measured before and after the sync


async def _insert_limit(clickhouse_url: str, database: str, contacts: int) -> float:
    """The write path's ceiling in ClickHouse: the same rows, as the product builds them from
    the same export files, INSERTed through the same driver (clickhouse-driver) into a fresh
    `recipients` table made by the same statement, in blocks of a page (5,000 rows) with a
    version each; the rows are built untimed, only the INSERTs are timed."""
    table = source_tables(database).objects["recipients"]
    client = Client(**_client_options(clickhouse_url))
    client.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    for created in object_table_statements(table):  # one server: one statement
        client.execute(created.sql)
    names = ", ".join(f"`{name}`" for name in (*ContactRecords.columns, VERSION))
    statement = f"INSERT INTO `{database}`.`recipients` ({names}) VALUES"
    generated = GeneratedContacts(contacts)
    synced_at = datetime.now(UTC)
    rows = 0
    elapsed = 0.0
    for part in range(EXPORT_FILES):
        async for batch in iterate_csv_value_batches(_gzip_chunks(generated, part)):
            builder = ContactRecords(batch.header, FIELD_TYPES, synced_at)
            records = builder.records(batch.records)
            for start in range(0, len(records), BATCH_SIZE):
                block = [(*record, rows + 1) for record in records[start : start + BATCH_SIZE]]
                started = time.perf_counter()
                client.execute(statement, block)
                elapsed += time.perf_counter() - started
                rows += len(block)
    client.execute(f"DROP DATABASE `{database}`")
    client.disconnect()
    return rows / elapsed


def _client_options(clickhouse_url: str) -> dict[str, Any]:
    target = ClickHouseTarget.from_url(clickhouse_url)
    return {
        "host": target.host,
        "port": target.port,
        "database": target.database,
        "user": target.user,
        "password": target.password,
    }


def _stored_in_clickhouse(clickhouse_url: str, schema: str) -> int:
    client = Client(**_client_options(clickhouse_url))
    ((live,),) = client.execute(
        f"SELECT count() FROM `{schema}`.`recipients` FINAL WHERE deleted_at IS NULL"
    )
    client.disconnect()
    return int(live)


async def run_clickhouse(
    database_url: str, clickhouse_url: str, workdir: Path, *, contacts: int
) -> ClickHouseSyncFigures:
    """The first sync of `contacts` with WAREHOUSE_URL naming ClickHouse (the control tables
    on `database_url`), against the raw INSERT measured before and after it."""
    await asyncio.to_thread(upgrade_control_schema, database_url)
    tag = uuid.uuid4().hex[:8]
    name = f"bench sync ch {tag}"
    fake = FakeSendGridProcess(contacts, workdir / "fake-clickhouse.log")
    try:
        await fake.wait_ready()
        settings = _settings(database_url, workdir, fake.url, clickhouse_url)
        schema = await _register(settings, name)
        limit_before = await _insert_limit(clickhouse_url, f"bench_limit_{tag}_a", contacts)
        first = await _sync(settings, workdir, name, "clickhouse")
    finally:
        fake.stop()
    stored = await asyncio.to_thread(_stored_in_clickhouse, clickhouse_url, schema)
    limit_after = await _insert_limit(clickhouse_url, f"bench_limit_{tag}_b", contacts)
    return ClickHouseSyncFigures(
        contacts=contacts,
        first=first,
        stored=stored,
        limit_rows_per_s=(limit_before + limit_after) / 2,
        limit_spread=(limit_before, limit_after),
    )


def summary_clickhouse(figures: ClickHouseSyncFigures) -> list[tuple[str, str, str]]:
    f = figures
    n = _count(f.contacts)
    first = f.first.recipients_per_s
    return [
        (f"recipients written/s, first sync of {n} contacts into ClickHouse "
         f"({EXPORT_FILES} gzip CSV files)",
         f"{first:,.0f}", f"= {first / f.limit_rows_per_s:.0%} of raw INSERT"),
        ("limit: raw INSERT (clickhouse-driver, 5,000-row blocks) of the same rows into a "
         "fresh recipients table, rows/s",
         f"{f.limit_rows_per_s:,.0f}",
         f"mean of before the sync ({f.limit_spread[0]:,.0f}) and after it "
         f"({f.limit_spread[1]:,.0f})"),
        ("whole first sync into ClickHouse, every collection, s", f"{f.first.wall_seconds:.1f}",
         f"export ready after {f.first.export_seconds:.1f} s"),
        ("sync process CPU per recipient, µs", _per_row_us(f.first),
         f"on CPU {_busy(f.first)} of the recipients phase"),
        (f"peak RSS of the sync at {n} contacts, MB", f"{f.first.rss_mb:.0f}", ""),
        ("recipients stored (FINAL, not deleted) / contacts", f"{f.stored:,} / {f.contacts:,}",
         "equal" if f.stored == f.contacts == f.first.recipients else "MISMATCH"),
    ]  # fmt: skip


def _count(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def _per_row_us(sync: SyncPass) -> str:
    return f"{sync.recipients_cpu_seconds / max(1, sync.recipients) * 1e6:.0f}"


def _busy(sync: SyncPass) -> str:
    return f"{sync.recipients_cpu_seconds / sync.recipients_seconds:.0%}"


def summary(figures: SyncFigures) -> list[tuple[str, str, str]]:
    f = figures
    n, small = _count(f.contacts), _count(f.baseline_contacts)
    limit = "COPY" if f.backend == "postgresql" else "executemany"
    first, resync = f.first.recipients_per_s, f.resync.recipients_per_s
    growth = max(f.first.rss_mb, f.resync.rss_mb) / f.baseline.rss_mb - 1
    lists, sends = f.first.upserted.get("lists", 0), f.first.upserted.get("campaigns", 0)
    others = sum(f.first.upserted.values()) - lists - sends - f.first.recipients
    o = f.overlap
    consistent = (
        f.first.recipients == f.resync.recipients == f.stored == f.contacts
        and f.edits_stored == f.edited
    )
    return [
        (f"recipients upserted/s, first sync of {n} contacts ({f.export_files} gzip CSV files)",
         f"{first:,.0f}", f"= {first / f.limit_rows_per_s:.0%} of raw {limit} (target ≥ 50%)"),
        (f"limit: raw {limit} of the same rows into a fresh recipients table, rows/s",
         f"{f.limit_rows_per_s:,.0f}",
         f"mean of before the first sync ({f.limit_spread[0]:,.0f}) and after the re-sync "
         f"({f.limit_spread[1]:,.0f})"),
        (f"recipients upserted/s, re-sync with {EDITED_SHARE:.0%} of contacts changed",
         f"{resync:,.0f}", f"= {resync / first:.0%} of the first sync (target ≥ 100%)"),
        (f"whole first sync, every collection, s ({lists:,} lists, {sends:,} single sends, "
         f"{others:,} rows of the other collections)",
         f"{f.first.wall_seconds:.1f}",
         f"= {f.first.wall_seconds / o.reference_seconds:.2f} × (export ready "
         f"{o.whole.export_seconds:.1f} s + contacts alone {o.alone.recipients_seconds:.1f} s) "
         f"(target ≤ 1.10)"),
        ("same, the collections one at a time (SYNC_CONCURRENCY=1), s",
         f"{o.sequential.wall_seconds:.1f}",
         f"= {o.sequential.wall_seconds / o.reference_seconds:.2f} × the same reference"),
        ("whole re-sync, s", f"{f.resync.wall_seconds:.1f}", ""),
        ("sync process CPU per recipient, first / re-sync, µs",
         f"{_per_row_us(f.first)} / {_per_row_us(f.resync)}",
         f"on CPU {_busy(f.first)} / {_busy(f.resync)} of the recipients phase"),
        (f"peak RSS of the sync at {small} contacts, MB", f"{f.baseline.rss_mb:.0f}", ""),
        (f"peak RSS of the sync at {n} contacts, first / re-sync, MB",
         f"{f.first.rss_mb:.0f} / {f.resync.rss_mb:.0f}",
         f"{growth:+.0%} vs {small} (target within 20%, 1M vs 100k)"),
        ("recipients stored / contacts; edited rows stored / edited",
         f"{f.stored:,} / {f.contacts:,}; {f.edits_stored:,} / {f.edited:,}",
         "equal" if consistent else "MISMATCH"),
    ]  # fmt: skip


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help="postgresql+asyncpg://… or sqlite+aiosqlite://…")
    parser.add_argument("--contacts", type=int, default=20_000)
    args = parser.parse_args()
    if args.child:
        await _child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url or f"sqlite+aiosqlite:///{workdir}/bench.db"
        if url.startswith("postgresql"):
            from bench.run import fresh_database

            await fresh_database(url, "bench_sync")
            url = url.rsplit("/", 1)[0] + "/bench_sync"
        figures = await run(url, Path(workdir), contacts=args.contacts)
    for row in summary(figures):
        print(" | ".join(row))


if __name__ == "__main__":
    asyncio.run(_main())
