"""Ingest into ClickHouse (`WAREHOUSE_URL=clickhouse://...`, control tables on PostgreSQL),
side by side in the same run:

- the service end to end (signed batches of bench/events.py through `sendgrid-source ingest`,
  as bench/ingest.py sends them) against the write path's limit: a raw `INSERT` of the very
  records the parser makes, through the same driver (clickhouse-driver), one per table, into
  a fresh source database each time;
- one receiver against two, with the same total load: the load generator sends each batch
  to the next receiver in turn (a round-robin balancer in the client), and each receiver's
  CPU per event is measured from /proc, with its parser process, as bench/ingest.py does;
  ClickHouse's and PostgreSQL's CPU per event too, since on this machine they share the
  cores with the receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from clickhouse_driver import Client

from bench.events import frame, make_batches
from bench.funnel import clickhouse_client
from bench.ingest import (
    ADMIN_TOKEN,
    BATCH_SIZE,
    SECRET_KEY,
    Records,
    _percentile,
    _post_all,
    _register,
    _service,
    _tree_cpu,
    _unique_records,
    free_port,
    postmaster_pid,
)
from shared.clickhouse import ClickHouseTarget
from shared.clickhouse_event_rows import driver_rows
from shared.clickhouse_tables import quoted, source_database_statements
from shared.migrate import upgrade_control_schema
from shared.settings import Settings, load_settings
from shared.tables import source_tables
from tests.webhook_helpers import Signer

LIMIT_RUNS = 2  # raw INSERT runs on each side of the service's run, each into a fresh database
SENDERS = 8


@dataclass
class Cpu:
    """CPU microseconds per event over one run."""

    receivers: list[float]  # each receiver (with its parser process), per event it received
    clickhouse: float
    postgres: float


@dataclass
class ReceiversRun:
    receivers: int
    events_per_s: float
    p50_ms: float
    p99_ms: float
    cpu: Cpu
    requests: list[int]  # batches each receiver answered


@dataclass
class ClickHouseIngestFigures:
    events_per_s: float
    p50_ms: float
    p99_ms: float
    cpu: Cpu
    limit_rows_per_s: float  # median of 2 * LIMIT_RUNS
    limit_spread: tuple[float, float]
    limit_cpu_us: tuple[float, float]  # per row: the driver (this process), ClickHouse
    limit_inserts: int  # INSERTs of each raw run: one per table
    work: dict[str, int]  # SERVER_EVENTS during the service's run
    rounds: int
    one: list[ReceiversRun]
    two: list[ReceiversRun]
    rows_stored: int
    unique_main: int  # unique events of the service's run (the raw INSERT's rows)
    unique_sent: int


def listener_pid(port: int) -> int:
    """The process listening on TCP `port` (the benchmark's ClickHouse server): the owner of
    the listening socket's inode among the open files in /proc."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    sockets.add(f"socket:[{inode}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(FileNotFoundError, PermissionError, ProcessLookupError):
            for descriptor in (entry / "fd").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if os.readlink(descriptor) in sockets:
                        return int(entry.name)
    raise RuntimeError(f"no process of this machine listens on port {port}")


def _rows_by_table(records: Records) -> dict[str, list[list[Any]]]:
    """The parser's records as the driver takes them (converted as the service's writer
    converts them: booleans as 0/1), before the clock starts."""
    tables = source_tables(None).events
    return {
        name: [list(row) for row in driver_rows(tables[name], table_records)]
        for name, table_records in records.items()
    }


@dataclass
class RawInserts:
    rates: list[float]  # rows/s of each run
    # CPU microseconds per row over the runs: this process (the driver), ClickHouse.
    cpu_us: tuple[float, float]


def _raw_inserts(
    client: Client, records: Records, schema: str, runs: int, clickhouse_pid: int
) -> RawInserts:
    """`runs` raw inserts: every table's records in one INSERT each, into a fresh database;
    only the inserting is timed."""
    rows = _rows_by_table(records)
    tables = source_tables(schema).events
    total = sum(len(r) for r in rows.values())
    rates = []
    driver = server = 0.0
    for _ in range(runs):
        client.execute(f"DROP DATABASE IF EXISTS {quoted(schema)}")
        for statement in source_database_statements(schema):  # one server
            client.execute(statement.sql)
        cpu = time.process_time(), _tree_cpu(clickhouse_pid)
        started = time.perf_counter()
        for name, table_rows in rows.items():
            columns = ", ".join(quoted(column.name) for column in tables[name].columns)
            client.execute(
                f"INSERT INTO {quoted(schema)}.{quoted(name)} ({columns}) VALUES", table_rows
            )
        rates.append(total / (time.perf_counter() - started))
        driver += time.process_time() - cpu[0]
        server += _tree_cpu(clickhouse_pid) - cpu[1]
    client.execute(f"DROP DATABASE IF EXISTS {quoted(schema)}")
    return RawInserts(rates, (driver / total / runs * 1e6, server / total / runs * 1e6))


class RoundRobin(httpx.AsyncBaseTransport):
    """A load balancer inside the load generator: each request goes to the next receiver's
    port in turn, over one connection pool."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.sent = [0] * len(ports)
        self._turn = itertools.cycle(range(len(ports)))
        # Idle connections are dropped well before uvicorn's keep-alive timeout (5 s), so no
        # request goes out on a connection the receiver is closing at that moment.
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=64, keepalive_expiry=1.0)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        receiver = next(self._turn)
        self.sent[receiver] += 1
        request.url = request.url.copy_with(port=self.ports[receiver])
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


# ClickHouse's counters (system.events) of the work a run made it do.
SERVER_EVENTS = ("InsertQuery", "InsertedRows", "SelectQuery", "MergedRows")


def server_events(client: Client) -> dict[str, int]:
    rows = client.execute(
        "SELECT event, value FROM system.events WHERE event IN %(names)s",
        {"names": SERVER_EVENTS},
    )
    return dict.fromkeys(SERVER_EVENTS, 0) | {name: int(value) for name, value in rows}


async def _fresh_source(settings: Settings, client: Client, name: str, key: str) -> tuple[str, str]:
    """A source registered anew (schema, webhook path), with no database left in ClickHouse
    under its name by an earlier run against the same server."""
    schema, url = await _register(settings, name, key)
    await asyncio.to_thread(client.execute, f"DROP DATABASE IF EXISTS {quoted(schema)}")
    return schema, "/" + url.split("/", 3)[3]


async def _stored(client: Client, schema: str) -> int:
    rows = await asyncio.to_thread(
        client.execute, f"SELECT count() FROM {quoted(schema)}.`activity`"
    )
    return int(rows[0][0])


class Meters:
    """CPU seconds so far of the receivers, ClickHouse and PostgreSQL."""

    def __init__(self, receivers: list[int], clickhouse: int, postgres: int) -> None:
        self.pids = (receivers, clickhouse, postgres)

    def read(self) -> tuple[list[float], float, float]:
        receivers, clickhouse, postgres = self.pids
        return [_tree_cpu(pid) for pid in receivers], _tree_cpu(clickhouse), _tree_cpu(postgres)

    @staticmethod
    def per_event(
        before: tuple[list[float], float, float],
        after: tuple[list[float], float, float],
        received: list[int],
    ) -> Cpu:
        total = sum(received)
        return Cpu(
            receivers=[
                (a - b) / events * 1e6
                for a, b, events in zip(after[0], before[0], received, strict=True)
            ],
            clickhouse=(after[1] - before[1]) / total * 1e6,
            postgres=(after[2] - before[2]) / total * 1e6,
        )


async def _receivers_run(
    settings: Settings,
    workdir: Path,
    signer: Signer,
    *,
    receivers: int,
    path: str,
    batches: list[list[dict[str, Any]]],
    clickhouse_pid: int,
    postmaster: int,
) -> ReceiversRun:
    """`batches` at the maximum rate from SENDERS senders, round-robin over `receivers`
    ingest processes (each as deployed, on a port of its own)."""
    overrides = {"WAREHOUSE_URL": str(settings.WAREHOUSE_URL)}
    signed = [(b, signer.headers(b)) for b in map(frame, batches)]
    async with contextlib.AsyncExitStack() as stack:
        pids, ports, services = [], [], []
        for n in range(receivers):
            own = settings.model_copy(update={"INGEST_PORT": free_port()})
            _, service = await stack.enter_async_context(
                _service(own, workdir, overrides, f"receiver-{n}.log")
            )
            pids.append(service.pid)
            services.append(service)
            ports.append(own.INGEST_PORT)
        balancer = RoundRobin(ports)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports[0]}", transport=balancer, timeout=120
        ) as client:
            meters = Meters(pids, clickhouse_pid, postmaster)
            before = meters.read()
            try:
                elapsed, latencies = await _post_all(client, path, signed, SENDERS, None)
            except httpx.TransportError as exc:
                ended = [f"receiver {n}: {s.poll()}" for n, s in enumerate(services)]
                raise RuntimeError(
                    f"a request to a receiver failed ({exc!r}); exit status of each "
                    f"(None: running): {', '.join(ended)}; logs: receiver-N.log in {workdir}"
                ) from exc
            after = meters.read()
    events = len(batches) * BATCH_SIZE
    return ReceiversRun(
        receivers=receivers,
        events_per_s=events / elapsed,
        p50_ms=_percentile(latencies, 0.5),
        p99_ms=_percentile(latencies, 0.99),
        cpu=Meters.per_event(before, after, [sent * BATCH_SIZE for sent in balancer.sent]),
        requests=balancer.sent,
    )


async def run(
    database_url: str,
    clickhouse_url: str,
    workdir: Path,
    *,
    batches: int,
    receiver_batches: int,
    rounds: int,
) -> ClickHouseIngestFigures:
    settings = load_settings(
        DATABASE_URL=database_url,
        WAREHOUSE_URL=clickhouse_url,
        DATA_DIR=workdir,
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=SECRET_KEY,
        INGEST_PORT=free_port(),
    )
    await asyncio.to_thread(upgrade_control_schema, database_url)
    client = clickhouse_client(clickhouse_url)
    try:
        clickhouse_pid = listener_pid(ClickHouseTarget.from_url(clickhouse_url).port)
        postmaster = await postmaster_pid(database_url)
        signer = Signer()
        key = signer.verification_key
        schema, path = await _fresh_source(settings, client, "Bench ClickHouse", key)
        full, unique_sent = make_batches(batches, BATCH_SIZE, duplicate_share=0.0, seed=1)
        records = _unique_records(full)
        raw_args = (client, records, "bench_raw_insert", LIMIT_RUNS, clickhouse_pid)
        raw = [await asyncio.to_thread(_raw_inserts, *raw_args)]
        overrides = {"WAREHOUSE_URL": clickhouse_url}
        async with _service(settings, workdir, overrides, "ingest.log") as (http, service):
            signed = [(b, signer.headers(b)) for b in map(frame, full)]
            meters = Meters([service.pid], clickhouse_pid, postmaster)
            before, counted = meters.read(), await asyncio.to_thread(server_events, client)
            elapsed, latencies = await _post_all(http, path, signed, SENDERS, None)
            cpu = Meters.per_event(before, meters.read(), [len(full) * BATCH_SIZE])
            work = await asyncio.to_thread(server_events, client)
            work = {name: work[name] - counted[name] for name in SERVER_EVENTS}
        stored = await _stored(client, schema)
        raw.append(await asyncio.to_thread(_raw_inserts, *raw_args))
        # One receiver, then two, in interleaved rounds (this machine's speed drifts over
        # minutes); each run into a source of its own, so all see tables of the same sizes.
        one: list[ReceiversRun] = []
        two: list[ReceiversRun] = []
        for round_ in range(rounds):
            for receivers, runs in ((1, one), (2, two)):
                made, unique = make_batches(
                    receiver_batches,
                    BATCH_SIZE,
                    duplicate_share=0.0,
                    seed=100 + 10 * round_ + receivers,
                )
                own_schema, own_path = await _fresh_source(
                    settings, client, f"Bench {receivers} receivers {round_}", key
                )
                runs.append(
                    await _receivers_run(
                        settings,
                        workdir,
                        signer,
                        receivers=receivers,
                        path=own_path,
                        batches=made,
                        clickhouse_pid=clickhouse_pid,
                        postmaster=postmaster,
                    )
                )
                stored += await _stored(client, own_schema)
                unique_sent += unique
    finally:
        client.disconnect()
    limits = sorted(raw[0].rates + raw[1].rates)
    return ClickHouseIngestFigures(
        events_per_s=len(full) * BATCH_SIZE / elapsed,
        p50_ms=_percentile(latencies, 0.5),
        p99_ms=_percentile(latencies, 0.99),
        cpu=cpu,
        limit_rows_per_s=statistics.median(limits),
        limit_spread=(limits[0], limits[-1]),
        work=work,
        limit_inserts=len(records),
        limit_cpu_us=(
            statistics.mean(r.cpu_us[0] for r in raw),
            statistics.mean(r.cpu_us[1] for r in raw),
        ),
        rounds=rounds,
        one=one,
        two=two,
        rows_stored=stored,
        unique_main=sum(len(r) for r in records.values()),
        unique_sent=unique_sent,
    )


def _median_run(runs: list[ReceiversRun]) -> ReceiversRun:
    """Each figure's median over the rounds."""
    return ReceiversRun(
        receivers=runs[0].receivers,
        events_per_s=statistics.median(r.events_per_s for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        cpu=Cpu(
            receivers=[
                statistics.median(r.cpu.receivers[n] for r in runs)
                for n in range(runs[0].receivers)
            ],
            clickhouse=statistics.median(r.cpu.clickhouse for r in runs),
            postgres=statistics.median(r.cpu.postgres for r in runs),
        ),
        requests=[sum(r.requests[n] for r in runs) for n in range(runs[0].receivers)],
    )


def summary(f: ClickHouseIngestFigures) -> list[tuple[str, str, str]]:
    one, two = _median_run(f.one), _median_run(f.two)
    inserts = f.work["InsertQuery"]
    rounds = f"median of {f.rounds} interleaved rounds" if f.rounds > 1 else "one round"

    def cpu(c: Cpu) -> str:
        receivers = " + ".join(f"{us:.0f}" for us in c.receivers)
        return (
            f"receiver{'s' if len(c.receivers) > 1 else ''} {receivers} µs, "
            f"ClickHouse {c.clickhouse:.0f} µs, PostgreSQL {c.postgres:.0f} µs"
        )

    return [
        (
            "events/s end to end into ClickHouse, no duplicates (HTTP, signature, validation, "
            "look-up of ids, insert; control tables on PostgreSQL)",
            f"{f.events_per_s:,.0f}",
            "",
        ),
        (
            "limit: raw INSERT of the same rows (clickhouse-driver, one per table, fresh "
            "database each), rows/s",
            f"{f.limit_rows_per_s:,.0f} (median of {2 * LIMIT_RUNS}, before and after: "
            f"{f.limit_spread[0]:,.0f}–{f.limit_spread[1]:,.0f})",
            f"service = {f.events_per_s / f.limit_rows_per_s:.0%} of it (target ≥ 50%)",
        ),
        ("p50 / p99 answer at the maximum rate, ms", f"{f.p50_ms:.0f} / {f.p99_ms:.0f}", ""),
        ("CPU per event at the maximum rate", cpu(f.cpu), ""),
        (
            "CPU per row of the raw INSERT",
            f"driver {f.limit_cpu_us[0]:.0f} µs, ClickHouse {f.limit_cpu_us[1]:.0f} µs",
            f"ClickHouse spends {f.cpu.clickhouse / f.limit_cpu_us[1]:.1f}× as much per event "
            "on the service's inserts and look-ups",
        ),
        (
            "ClickHouse's work in the service's run: INSERTs, rows each on average; look-ups "
            "(SELECTs); rows merged meanwhile",
            f"{inserts:,}, {f.work['InsertedRows'] / max(1, inserts):,.0f}; "
            f"{f.work['SelectQuery']:,}; {f.work['MergedRows']:,}",
            f"raw INSERT: {f.limit_inserts} INSERTs a run, "
            f"{f.unique_main / f.limit_inserts:,.0f} rows each on average",
        ),
        (
            f"one receiver: events/s, p50 / p99 ms ({rounds})",
            f"{one.events_per_s:,.0f}; {one.p50_ms:.0f} / {one.p99_ms:.0f}",
            "1.00×",
        ),
        (
            "two receivers, batches round-robin, same total load: events/s, p50 / p99 ms",
            f"{two.events_per_s:,.0f}; {two.p50_ms:.0f} / {two.p99_ms:.0f}",
            f"{two.events_per_s / one.events_per_s:.2f}× one receiver "
            f"({os.cpu_count()} cores in all)",
        ),
        ("CPU per event, one receiver", cpu(one.cpu), ""),
        (
            "CPU per event, two receivers (each per event it received)",
            cpu(two.cpu),
            "batches answered: " + " / ".join(f"{n:,}" for n in two.requests),
        ),
        (
            "rows in ClickHouse (activity, FINAL) / unique events sent",
            f"{f.rows_stored:,} / {f.unique_sent:,}",
            "equal" if f.rows_stored == f.unique_sent else "MISMATCH",
        ),
    ]
