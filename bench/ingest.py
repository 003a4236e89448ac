"""Ingest benchmark: the deployed service under load, against the write path's limit (raw
COPY / executemany of the same rows into the same tables) and a naive receiver (one INSERT
and commit per event), all in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.events import frame, make_batches
from shared import warehouse
from shared.bulk_values import is_json
from shared.db import create_engine, sqlite_schema_path
from shared.event_parsing import parse_body
from shared.migrate import upgrade_control_schema
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings, load_settings
from shared.tables import source_tables
from tests.webhook_helpers import Signer

BATCH_SIZE = 1000
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
SECRET_KEY = "bench-secret-key-0123456789abcdef0123"


# Shares of duplicates (SendGrid's resends: earlier events of the run sent again) of the
# cases measured after the main one, which sends none, as in steady state.
DUPLICATE_CASES = (0.05, 0.50)


@dataclass
class DuplicatesCase:
    """A maximum-rate run whose batches repeat `share` of earlier events."""

    share: float
    events_per_s: float
    # CPU seconds per event: service, PostgreSQL.
    cpu_us: tuple[float, float]
    # Table writes whose insert with no look-up was refused (a stored id met), of all.
    refused: int
    table_writes: int


# Each lever switched off in turn, then both, against the defaults: settings of the service
# as deployed. Parsing in more processes than cores is measured too.
LEVERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("defaults", {}),
    ("look-up first (INGEST_INSERT_FIRST_BELOW=0)", {"INGEST_INSERT_FIRST_BELOW": "0"}),
    ("parse in a thread (INGEST_PARSERS=0)", {"INGEST_PARSERS": "0"}),
    ("both off", {"INGEST_INSERT_FIRST_BELOW": "0", "INGEST_PARSERS": "0"}),
    ("two parser processes (INGEST_PARSERS=2)", {"INGEST_PARSERS": "2"}),
)
LEVER_ROUNDS = 2  # interleaved: this machine's speed drifts over minutes
LEVER_SHARES = (0.0, 0.05, 0.50)  # shares of duplicates each lever run sends


@dataclass
class LeverFigures:
    """One setting of the levers: the median over its rounds, per share of duplicates."""

    label: str
    events_per_s: list[float]
    # CPU microseconds per event with no duplicates: service, PostgreSQL.
    cpu_us: tuple[float, float]


@dataclass
class HalfRate:
    """An open-loop run at half the maximum rate. The first follows the maximum-rate run,
    while PostgreSQL's autovacuum reads and analyzes the rows it wrote (about a core for
    tens of seconds on this machine); the second starts once autovacuum is idle."""

    label: str
    events_per_s: float
    p50_ms: float
    p99_ms: float
    # Autovacuum and autoanalyze runs on the cluster's tables that finished meanwhile.
    autovacuum_runs: int


@dataclass
class IngestFigures:
    backend: str
    events_sent: int
    unique_sent: int
    rows_stored: int
    events_per_s: float
    p50_max_ms: float
    p99_max_ms: float
    half_rate: list[HalfRate]
    rss_mb: float
    limit_rows_per_s: float  # the median of LIMIT_RUNS before and LIMIT_RUNS after
    limit_spread: tuple[float, float]
    naive_rows_per_s: float
    commit_retries: int
    commits: int
    # Cores busy during the maximum-rate run: service, load generator, PostgreSQL.
    cpu: list[float]
    duplicates: list[DuplicatesCase]
    levers: list[LeverFigures]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scopes_client() -> httpx.AsyncClient:
    # The benchmark registers its source without SendGrid: the scopes check is answered here.
    return httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda _: httpx.Response(200, json={"scopes": ["marketing.read"]})
        )
    )


async def _register(settings: Settings, name: str, key: str | None) -> tuple[str, str]:
    engine = create_engine(settings.DATABASE_URL)
    async with _scopes_client() as http:
        registry = SourceRegistry(engine, settings, http)
        source, _ = await registry.create(
            SourceCreate(name=name, api_key="SG.bench.key", webhook_verification_key=key)
        )
        url = settings.webhook_url(source.id, registry.secrets.webhook_token(source))
    await engine.dispose()
    return source.schema_name, url


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def _post_all(
    client: httpx.AsyncClient,
    path: str,
    bodies: list[tuple[bytes, dict[str, str]]],
    senders: int,
    interval: float | None,
) -> tuple[float, list[float]]:
    """Closed loop (interval None): `senders` post back to back. Open loop: one body every
    `interval` seconds, whatever the answers, as SendGrid's servers do."""
    latencies: list[float] = []
    queue = list(reversed(bodies))

    async def send(body: bytes, headers: dict[str, str]) -> None:
        started = time.perf_counter()
        response = await client.post(path, content=body, headers=headers)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:200]}")

    async def sender() -> None:
        while queue:
            await send(*queue.pop())

    started = time.perf_counter()
    if interval is None:
        await asyncio.gather(*(sender() for _ in range(senders)))
    else:
        await send_on_schedule(bodies, interval, started, send)
    return time.perf_counter() - started, latencies


async def send_on_schedule(
    bodies: list[tuple[bytes, dict[str, str]]],
    interval: float,
    started: float,
    send: Callable[[bytes, dict[str, str]], Coroutine[Any, Any, None]],
) -> None:
    """Open loop: body i leaves at started + i * interval, whatever the earlier answers."""
    tasks: list[asyncio.Task[None]] = []
    for i, (body, headers) in enumerate(bodies):
        delay = started + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(body, headers)))
    await asyncio.gather(*tasks)


async def wait_healthy(client: httpx.AsyncClient, attempts: int = 300) -> None:
    for _ in range(attempts):
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{client.base_url} did not become healthy")


_RETRIES = "sendgrid_source_commit_retries_total"
_COMMITS = "sendgrid_source_commit_events_count"
_REFUSED = "sendgrid_source_inserts_refused_total"
_TABLE_WRITES = "sendgrid_source_table_writes_total"


async def _metrics(client: httpx.AsyncClient) -> dict[str, int]:
    """The service's counters the benchmark reports, summed over their labels."""
    text = (await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).text
    values = dict.fromkeys((_RETRIES, _COMMITS, _REFUSED, _TABLE_WRITES), 0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        name = name.split("{", 1)[0]
        if name in values:
            values[name] += int(float(value))
    return values


def _process_cpu(pid: int, *, reaped_children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    if reaped_children:  # cutime + cstime: children that ended and were waited for
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the service and its parser processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            parents[int(entry.name)] = int(stat[1])
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def _tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its live descendants, and of the children it reaped (a
    PostgreSQL backend that ended, say)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            total += _process_cpu(member, reaped_children=member == pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


async def postmaster_pid(database_url: str) -> int:
    """The benchmark's own PostgreSQL cluster: its postmaster is the parent of a backend.
    Other clusters on the machine (other test runs) are not counted."""
    connection = await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        return _parent_of(await connection.fetchval("SELECT pg_backend_pid()"))
    finally:
        await connection.close()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def autovacuum_idle(database_url: str, at_most: float = 300.0) -> float:
    """Wait until no autovacuum worker has run for a second; the seconds waited."""
    if not database_url.startswith("postgresql"):
        return 0.0
    connection = await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://")
    )
    started = time.perf_counter()
    idle_since = None
    try:
        while time.perf_counter() - started < at_most:
            workers = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            )
            now = time.perf_counter()
            if workers:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= 1.0:
                break
            await asyncio.sleep(0.2)
        return time.perf_counter() - started
    finally:
        await connection.close()


async def autovacuum_runs(database_url: str) -> int:
    """Autovacuum and autoanalyze runs so far on the cluster's tables (0 on SQLite)."""
    if not database_url.startswith("postgresql"):
        return 0
    connection = await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        # Statistics are read once per transaction by default: take a fresh snapshot.
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await connection.fetchval(
                "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) "
                "FROM pg_stat_user_tables"
            )
        )
    finally:
        await connection.close()


def cpu_seconds(service_pid: int, postmaster: int | None) -> tuple[float, float, float]:
    """CPU seconds used so far by the service (with its parser processes), this process, and
    the benchmark's PostgreSQL cluster (every process of it, autovacuum included)."""
    postgres = _tree_cpu(postmaster) if postmaster is not None else 0.0
    return _tree_cpu(service_pid), time.process_time(), postgres


def tree_memory_mb(pid: int, field: str) -> float:
    """A /proc status memory `field` (VmRSS, VmHWM) of `pid` plus that of each of its
    descendants. For VmHWM it is the sum of the peaks, never less than the peak of the sum."""
    total = 0.0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) / 1024
    return total


def peak_rss_mb(pid: int) -> float:
    return tree_memory_mb(pid, "VmHWM")


async def count_events(settings: Settings, schema: str) -> int:
    engine = create_engine(settings.DATABASE_URL)
    async with engine.connect() as connection:
        count = await connection.scalar(sa.text(f"SELECT count(*) FROM {schema}.activity"))
    await engine.dispose()
    return int(count or 0)


Records = dict[str, list[tuple[Any, ...]]]  # table -> the parser's records


def _unique_records(batches: list[list[dict[str, Any]]]) -> Records:
    seen: dict[str, dict[str, Any]] = {}
    for batch in batches:
        for event in batch:
            seen.setdefault(event["sg_event_id"], event)
    records: Records = {}
    events = list(seen.values())
    for start in range(0, len(events), BATCH_SIZE):  # as the service parses them
        parsed = parse_body(frame(events[start : start + BATCH_SIZE]), datetime.now(UTC))
        for table, table_records in parsed.rows.items():
            records.setdefault(table, []).extend(table_records)
    return records


LIMIT_RUNS = 3  # runs of the limit on each side of the service's, each into emptied tables


async def _copy_limit(settings: Settings, schema: str, records: Records) -> list[float]:
    """The write path's ceiling: raw COPY (PostgreSQL) or one executemany (SQLite) of the
    very records the parser makes, in one transaction. Only the writing is timed."""
    engine = create_engine(settings.DATABASE_URL)
    async with engine.begin() as connection:
        await warehouse.create_source_schema(connection, schema)
    await engine.dispose()
    tables = source_tables(schema)
    total = sum(len(r) for r in records.values())
    rates = []
    if settings.is_sqlite:
        main = make_url(settings.DATABASE_URL).database or ""
        as_text = {
            name: [
                tuple(v.isoformat(sep=" ") if isinstance(v, datetime) else v for v in record)
                for record in table_records
            ]
            for name, table_records in records.items()
        }
        for _ in range(LIMIT_RUNS):
            db = sqlite3.connect(main)
            db.execute(
                "ATTACH DATABASE ? AS " + schema,
                (str(sqlite_schema_path(settings.DATABASE_URL, schema)),),
            )
            for name in as_text:
                db.execute(f"DELETE FROM {schema}.{name}")
            db.commit()
            started = time.perf_counter()
            for name, values in as_text.items():
                columns = [c.name for c in tables.events[name].columns]
                db.executemany(
                    f"INSERT INTO {schema}.{name} ({', '.join(f'{c!r}' for c in columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    values,
                )
            db.commit()
            rates.append(total / (time.perf_counter() - started))
            db.close()
        return sorted(rates)
    dsn = settings.DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    for _ in range(LIMIT_RUNS):
        await connection.execute(f"TRUNCATE {', '.join(f'{schema}.{name}' for name in records)}")
        started = time.perf_counter()
        async with connection.transaction():
            for name, table_records in records.items():
                await connection.copy_records_to_table(
                    name,
                    schema_name=schema,
                    records=table_records,
                    columns=[c.name for c in tables.events[name].columns],
                )
        rates.append(total / (time.perf_counter() - started))
    await connection.close()
    return sorted(rates)


async def _naive_rate(settings: Settings, schema: str, records: Records, limit: int) -> float:
    """What most open-source collectors do: one INSERT and one commit per event."""
    engine = create_engine(settings.DATABASE_URL)
    async with engine.begin() as connection:
        await warehouse.create_source_schema(connection, schema)
    tables = source_tables(schema)

    def row(name: str, record: tuple[Any, ...]) -> dict[str, Any]:
        # Column values as an ORM user has them: JSON as objects, for the JSON type to encode.
        columns = tables.events[name].columns
        return {
            column.name: json.loads(value) if is_json(column) and value is not None else value
            for column, value in zip(columns, record, strict=True)
        }

    sample = [
        (name, row(name, r)) for name, table_records in records.items() for r in table_records
    ]
    sample = sample[:limit]
    started = time.perf_counter()
    for name, values in sample:
        async with engine.begin() as connection:
            await connection.execute(tables.events[name].insert().values(values))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return len(sample) / elapsed


@contextlib.asynccontextmanager
async def _service(
    settings: Settings, workdir: Path, overrides: dict[str, str], log_name: str
) -> AsyncIterator[tuple[httpx.AsyncClient, subprocess.Popen[bytes]]]:
    """The ingest service as deployed (`sendgrid-source ingest`), with `overrides` of its
    settings, and a client of it once healthy."""
    env = (
        os.environ
        | {
            "DATABASE_URL": settings.DATABASE_URL,
            "DATA_DIR": str(workdir),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "SECRET_KEY": SECRET_KEY,
            "INGEST_PORT": str(settings.INGEST_PORT),
            "LOG_LEVEL": "WARNING",
        }
        | overrides
    )
    command = [sys.executable, "-m", "sendgrid_source", "ingest"]
    with (workdir / log_name).open("w") as log:
        service = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{settings.INGEST_PORT}",
                timeout=120,
                limits=httpx.Limits(max_connections=64),
            ) as client:
                await wait_healthy(client)
                yield client, service
        finally:
            service.terminate()
            service.wait(30)


async def _levers(
    settings: Settings,
    workdir: Path,
    signer: Signer,
    postmaster: int | None,
    *,
    batches: int,
    senders: int,
) -> list[LeverFigures]:
    """Each setting of LEVERS in LEVER_ROUNDS interleaved rounds, at the maximum rate with
    each share of LEVER_SHARES; each setting writes into a source of its own, so all see
    tables of the same sizes. None when `batches` is 0."""
    if not batches:
        return []
    rates: dict[str, list[list[float]]] = {label: [] for label, _ in LEVERS}
    cpu: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in LEVERS}
    paths = []
    for n in range(len(LEVERS)):  # SQLite attaches at most 10 schemas: one source a setting
        _, url = await _register(settings, f"Lever {n}", signer.verification_key)
        paths.append("/" + url.split("/", 3)[3])
    for round_ in range(LEVER_ROUNDS):
        for n, (label, overrides) in enumerate(LEVERS):
            path = paths[n]
            run_rates = []
            async with _service(settings, workdir, overrides, "lever.log") as (client, service):
                for k, share in enumerate(LEVER_SHARES):
                    made, _ = make_batches(
                        batches,
                        BATCH_SIZE,
                        duplicate_share=share,
                        seed=1000 * (round_ + 1) + 10 * n + k,
                    )
                    signed = [(b, signer.headers(b)) for b in map(frame, made)]
                    before = cpu_seconds(service.pid, postmaster)
                    elapsed, _ = await _post_all(client, path, signed, senders, None)
                    after = cpu_seconds(service.pid, postmaster)
                    events = batches * BATCH_SIZE
                    run_rates.append(events / elapsed)
                    if share == 0.0:
                        cpu[label].append(
                            (
                                (after[0] - before[0]) / events * 1e6,
                                (after[2] - before[2]) / events * 1e6,
                            )
                        )
            rates[label].append(run_rates)
    return [
        LeverFigures(
            label=label,
            events_per_s=[
                statistics.median(run[k] for run in rates[label]) for k in range(len(LEVER_SHARES))
            ],
            cpu_us=(
                statistics.median(c[0] for c in cpu[label]),
                statistics.median(c[1] for c in cpu[label]),
            ),
        )
        for label, _ in LEVERS
    ]


async def run(
    database_url: str, workdir: Path, *, batches: int, senders: int, lever_batches: int
) -> IngestFigures:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    settings = load_settings(
        DATABASE_URL=database_url,
        DATA_DIR=workdir,
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=SECRET_KEY,
        INGEST_PORT=free_port(),
    )
    await asyncio.to_thread(upgrade_control_schema, database_url)
    signer = Signer()
    schema, url = await _register(settings, "Bench", signer.verification_key)
    path = "/" + url.split("/", 3)[3]
    full, unique_full = make_batches(batches, BATCH_SIZE, duplicate_share=0.0, seed=1)
    # As many batches as the maximum-rate run each: a p99 over 300 answers is the fourth
    # slowest, not the second.
    halves = [
        make_batches(batches, BATCH_SIZE, duplicate_share=0.0, seed=seed) for seed in (2, 100)
    ]
    repeated = [
        make_batches(max(4, batches // 2), BATCH_SIZE, duplicate_share=share, seed=3 + n)
        for n, share in enumerate(DUPLICATE_CASES)
    ]
    records = _unique_records(full)
    # The limit is measured before and after the service run: this machine's speed drifts
    # over minutes, and the median of both sides keeps the ratio honest.
    limits = await _copy_limit(settings, "bench_limit", records)
    postmaster = await postmaster_pid(database_url) if backend == "postgresql" else None
    async with _service(settings, workdir, {}, "ingest.log") as (client, service):
        signed_full = [(b, signer.headers(b)) for b in map(frame, full)]
        # BENCH_PROFILE=<dir>: py-spy samples the service during the maximum-rate run.
        profile = os.environ.get("BENCH_PROFILE")
        if profile:
            subprocess.Popen(
                ["py-spy", "record", "-p", str(service.pid), "-d", "8", "--format", "raw", "-s",
                 "-o", f"{profile}/ingest-{backend}.txt"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        cpu_before = cpu_seconds(service.pid, postmaster)
        elapsed, latencies = await _post_all(client, path, signed_full, senders, None)
        cpu = [
            (after - before) / elapsed
            for before, after in zip(cpu_before, cpu_seconds(service.pid, postmaster), strict=True)
        ]
        events_per_s = batches * BATCH_SIZE / elapsed
        interval = BATCH_SIZE / (events_per_s / 2)
        half_rate = []
        for n, (half, _) in enumerate(halves):
            label = "right after it" + (
                ", autovacuum catching up on its rows" if backend == "postgresql" else ""
            )
            if n:
                waited = await autovacuum_idle(database_url)
                label = (
                    f"once autovacuum was idle (waited {waited:.0f} s)"
                    if backend == "postgresql"
                    else "a second time"
                )
            signed_half = [(b, signer.headers(b)) for b in map(frame, half)]
            vacuums = await autovacuum_runs(database_url)
            half_elapsed, half_latencies = await _post_all(
                client, path, signed_half, senders, interval
            )
            half_rate.append(
                HalfRate(
                    label=label,
                    events_per_s=len(half) * BATCH_SIZE / half_elapsed,
                    p50_ms=_percentile(half_latencies, 0.5),
                    p99_ms=_percentile(half_latencies, 0.99),
                    autovacuum_runs=await autovacuum_runs(database_url) - vacuums,
                )
            )
        metrics = await _metrics(client)
        cases = []
        for share, (case_batches, _) in zip(DUPLICATE_CASES, repeated, strict=True):
            signed = [(b, signer.headers(b)) for b in map(frame, case_batches)]
            before = (cpu_seconds(service.pid, postmaster), await _metrics(client))
            case_elapsed, _ = await _post_all(client, path, signed, senders, None)
            after = (cpu_seconds(service.pid, postmaster), await _metrics(client))
            events = len(case_batches) * BATCH_SIZE
            cases.append(
                DuplicatesCase(
                    share=share,
                    events_per_s=events / case_elapsed,
                    cpu_us=(
                        (after[0][0] - before[0][0]) / events * 1e6,
                        (after[0][2] - before[0][2]) / events * 1e6,
                    ),
                    refused=after[1][_REFUSED] - before[1][_REFUSED],
                    table_writes=after[1][_TABLE_WRITES] - before[1][_TABLE_WRITES],
                )
            )
        rss = peak_rss_mb(service.pid)
    stored = await count_events(settings, schema)
    limits = sorted(limits + await _copy_limit(settings, "bench_limit", records))
    naive = await _naive_rate(settings, "bench_naive", records, 2000)
    levers = await _levers(
        settings, workdir, signer, postmaster, batches=lever_batches, senders=senders
    )
    return IngestFigures(
        backend=backend,
        events_sent=(len(full) + sum(len(b) for b, _ in halves + repeated)) * BATCH_SIZE,
        unique_sent=unique_full + sum(unique for _, unique in halves + repeated),
        rows_stored=stored,
        events_per_s=events_per_s,
        p50_max_ms=_percentile(latencies, 0.5),
        p99_max_ms=_percentile(latencies, 0.99),
        half_rate=half_rate,
        rss_mb=rss,
        limit_rows_per_s=statistics.median(limits),
        limit_spread=(limits[0], limits[-1]),
        naive_rows_per_s=naive,
        commit_retries=metrics[_RETRIES],
        commits=metrics[_COMMITS],
        cpu=cpu,
        duplicates=cases,
        levers=levers,
    )


def _per_event_us(figures: IngestFigures, process: int) -> str:
    return f"{figures.cpu[process] / figures.events_per_s * 1e6:.0f} µs"


def _cpu_bound(f: IngestFigures, limit_kind: str) -> tuple[str, str, str]:
    """What every core of the machine would give at this run's CPU per event: the ceiling
    the maximum rate is measured against when the work, not waiting, is what limits it."""
    cores = os.cpu_count() or 1
    busy = sum(f.cpu)
    per_event_us = busy / f.events_per_s * 1e6
    bound = cores / (per_event_us / 1e6)
    return (
        f"bound by CPU: all {cores} cores at this run's CPU per event (service, load "
        "generator and PostgreSQL together), events/s",
        f"{bound:,.0f} ({per_event_us:.0f} µs an event; the run kept {busy:.2f} cores busy)",
        f"= {bound / f.limit_rows_per_s:.0%} of raw {limit_kind}",
    )


def summary(figures: IngestFigures) -> list[tuple[str, str, str]]:
    f = figures
    limit_kind = "COPY" if f.backend == "postgresql" else "executemany"
    stored = "equal" if f.rows_stored == f.unique_sent else "MISMATCH"
    return [
        (
            "events/s, end to end, no duplicates (HTTP, signature, validation, dedupe, commit)",
            f"{f.events_per_s:,.0f}",
            "",
        ),
        (
            f"limit: raw {limit_kind} of the same rows into the same tables, rows/s",
            f"{f.limit_rows_per_s:,.0f} (median of {2 * LIMIT_RUNS}, before and after: "
            f"{f.limit_spread[0]:,.0f}–{f.limit_spread[1]:,.0f})",
            f"service = {f.events_per_s / f.limit_rows_per_s:.0%} of it (target ≥ 50%)",
        ),
        (
            "naive: one INSERT + commit per event, rows/s",
            f"{f.naive_rows_per_s:,.0f}",
            f"service = {f.events_per_s / f.naive_rows_per_s:.1f}× it (target ≥ 20×)",
        ),
        (
            "p50 / p99 answer at the maximum rate, ms",
            f"{f.p50_max_ms:.0f} / {f.p99_max_ms:.0f}",
            "",
        ),
        *(
            (
                f"p50 / p99 answer at half rate ({half.events_per_s:,.0f} events/s), "
                f"{half.label}, ms",
                f"{half.p50_ms:.0f} / {half.p99_ms:.0f}"
                + (
                    f"; autovacuum runs finished meanwhile: {half.autovacuum_runs}"
                    if f.backend == "postgresql"
                    else ""
                ),
                "target p99 ≤ 250 ms",
            )
            for half in f.half_rate
        ),
        (
            "peak RSS of the service (with its parser processes), MB",
            f"{f.rss_mb:.0f}",
            "target ≤ 250 MB",
        ),
        (
            "cores busy at the maximum rate: service / load generator"
            + (" / PostgreSQL" if f.backend == "postgresql" else ""),
            " / ".join(f"{share:.2f}" for share in f.cpu[: 3 if f.backend == "postgresql" else 2]),
            f"of {os.cpu_count()} cores; CPU per event: service {_per_event_us(f, 0)}"
            + (f", PostgreSQL {_per_event_us(f, 2)}" if f.backend == "postgresql" else ""),
        ),
        # On SQLite the writes run in the service's own process: one core bounds them.
        *([_cpu_bound(f, limit_kind)] if f.backend == "postgresql" else []),
        *(
            (
                f"events/s with {case.share:.0%} duplicates (earlier events sent again), "
                "end to end",
                f"{case.events_per_s:,.0f}; CPU per event: service {case.cpu_us[0]:.0f} µs"
                + (f", PostgreSQL {case.cpu_us[1]:.0f} µs" if f.backend == "postgresql" else "")
                + f"; inserts with no look-up refused: {case.refused:,} of "
                f"{case.table_writes:,} table writes",
                f"service = {case.events_per_s / f.limit_rows_per_s:.0%} of raw {limit_kind}"
                + (" (target ≥ 40%)" if case.share == 0.05 and f.backend == "postgresql" else ""),
            )
            for case in f.duplicates
        ),
        *(
            (
                f"lever: {lever.label}, events/s with "
                + " / ".join(f"{share:.0%}" for share in LEVER_SHARES)
                + " duplicates (median of "
                f"{LEVER_ROUNDS} interleaved runs)",
                " / ".join(f"{rate:,.0f}" for rate in lever.events_per_s)
                + f"; CPU per event: service {lever.cpu_us[0]:.0f} µs"
                + (f", PostgreSQL {lever.cpu_us[1]:.0f} µs" if f.backend == "postgresql" else ""),
                " / ".join(f"{rate / f.limit_rows_per_s:.0%}" for rate in lever.events_per_s)
                + f" of raw {limit_kind}",
            )
            for lever in f.levers
        ),
        (
            "group commits (maximum and half rate) / of them written again after a race",
            f"{f.commits:,} / {f.commit_retries:,}",
            "",
        ),
        (
            "rows in the database / unique events sent",
            f"{f.rows_stored:,} / {f.unique_sent:,}",
            stored,
        ),
    ]
