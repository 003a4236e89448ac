"""Fixtures and helpers of the fault tests: real PostgreSQL (and ClickHouse), real processes,
SendGrid-like senders.

Every fault test runs on PostgreSQL only: the faults (a cut TCP connection, a killed process
holding a session) need a database server. A test that asks for `warehouse` runs twice: with
the event tables on PostgreSQL (`sql`), and in the ClickHouse server scripts/test starts
(`clickhouse`, WAREHOUSE_URL), DATABASE_URL staying on PostgreSQL. Loops are bounded by
attempt counts, and every test body by `asyncio.timeout`, so a regression fails the test
instead of hanging CI.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from ingest_service.app import create_app as create_ingest_app
from shared.clickhouse import ClickHouse, ClickHouseTarget
from shared.clickhouse_tables import quoted
from shared.db import create_engine
from shared.events import EVENT_TABLES, EVENT_TYPES
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings
from tests.clickhouse.conftest import clickhouse_server_url
from tests.tcp_proxy import OutageProxy
from tests.webhook_helpers import Signer, body_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def backend() -> str:
    # A database outage and a killed process's session only exist on a database server.
    return "postgres"


@pytest.fixture(params=["sql", "clickhouse"])
def warehouse(request: pytest.FixtureRequest) -> str:
    """Where the event tables live: PostgreSQL itself, or ClickHouse (WAREHOUSE_URL)."""
    return str(request.param)


@pytest.fixture
def warehouse_settings(settings: Settings, warehouse: str) -> Settings:
    """The test's settings with the event tables in `warehouse`."""
    if warehouse == "sql":
        return settings
    return settings.model_copy(update={"WAREHOUSE_URL": clickhouse_server_url()})


@dataclass
class WarehouseOutage:
    """The ingest app, in process, reaching its event warehouse through a proxy the test cuts:
    PostgreSQL itself (`sql`), or ClickHouse while PostgreSQL stays up."""

    app: FastAPI
    proxy: OutageProxy
    settings: Settings


@pytest.fixture
async def warehouse_outage(
    warehouse_settings: Settings, warehouse: str
) -> AsyncIterator[WarehouseOutage]:
    settings = warehouse_settings
    if warehouse == "sql":
        url = make_url(settings.DATABASE_URL)
        proxy = OutageProxy(url.host or "127.0.0.1", url.port or 5432)
        await proxy.start()
        proxied = settings.model_copy(
            update={
                "DATABASE_URL": url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                    hide_password=False
                )
            }
        )
    else:
        assert settings.clickhouse_url is not None
        target = ClickHouseTarget.from_url(settings.clickhouse_url)
        proxy = OutageProxy(target.host, target.port)
        await proxy.start()
        proxied = settings.model_copy(
            update={"WAREHOUSE_URL": f"clickhouse://127.0.0.1:{proxy.port}/{target.database}"}
        )
    app = create_ingest_app(proxied)
    try:
        async with app.router.lifespan_context(app):
            yield WarehouseOutage(app, proxy, settings)
    finally:
        await proxy.stop()


# --- the database, read directly ------------------------------------------------------------


def asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


async def fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
        return rows
    finally:
        await connection.close()


async def stored_event_ids(database_url: str, schema: str) -> list[str]:
    """Every event id stored in the source's event tables (a list: repeats would show)."""
    return [row["id"] for row in await fetch(database_url, f"SELECT id FROM {schema}.activity")]


@dataclass
class StoredEvents:
    """What a source's event warehouse holds, as users see it and (ClickHouse) as rows."""

    activity_ids: list[str]  # the `activity` view's ids: repeats would show
    per_table: dict[str, int]  # rows per event table as users read it (FINAL on ClickHouse)
    raw_per_table: dict[str, int]  # rows per table before any merge (= per_table on SQL)

    @property
    def raw_rows(self) -> int:
        return sum(self.raw_per_table.values())


async def stored_events(settings: Settings, schema: str) -> StoredEvents:
    """Read from the warehouse `settings` name; every event table with at least one row."""
    if settings.clickhouse_url is None:
        ids = await stored_event_ids(settings.DATABASE_URL, schema)
        per_table = {}
        for table in EVENT_TABLES:
            rows = await fetch(settings.DATABASE_URL, f"SELECT count(*) FROM {schema}.{table}")
            if rows[0][0]:
                per_table[table] = int(rows[0][0])
        return StoredEvents(ids, per_table, dict(per_table))
    clickhouse = ClickHouse(settings.clickhouse_url, size=1)
    try:
        db = quoted(schema)
        ids = [row[0] for row in await clickhouse.execute(f"SELECT id FROM {db}.`activity`")]
        final, raw = {}, {}
        for table in EVENT_TABLES:
            (count,) = (
                await clickhouse.execute(f"SELECT count() FROM {db}.{quoted(table)} FINAL")
            )[0]
            (rows,) = (await clickhouse.execute(f"SELECT count() FROM {db}.{quoted(table)}"))[0]
            if rows:
                final[table], raw[table] = int(count), int(rows)
        return StoredEvents(ids, final, raw)
    finally:
        await clickhouse.close()


def expected_per_table(ids_by_event: dict[str, str]) -> dict[str, int]:
    """Distinct ids per event table, from each id's `event` value."""
    return dict(Counter(EVENT_TYPES[event][0] for event in ids_by_event.values()))


# --- Event Webhook traffic --------------------------------------------------------------------

_KINDS = ("processed", "delivered", "open", "click", "deferred", "bounce", "dropped")


def make_event(tag: str, n: int) -> dict[str, Any]:
    """A valid event of one of the common types, with a unique `sg_event_id`."""
    kind = _KINDS[n % len(_KINDS)]
    event: dict[str, Any] = {
        "email": f"user{n}@example.com",
        "event": kind,
        "timestamp": 1_760_000_000 + n,
        "sg_event_id": base64.urlsafe_b64encode(f"{tag}-{n:08d}".encode()).decode(),
        "sg_message_id": f"msg{n // 3}.recvd-{n % 97}",
        "category": ["newsletter"],
        "campaign": "faults",
    }
    if kind == "delivered":
        event |= {"response": "250 OK", "ip": "167.89.0.1", "tls": 1}
    elif kind == "open":
        event |= {"ip": "203.0.113.7", "useragent": "Mozilla/5.0", "sg_machine_open": False}
    elif kind == "click":
        event |= {"url": f"https://example.com/p/{n % 50}", "useragent": "Mozilla/5.0"}
    elif kind == "deferred":
        event |= {"response": "400 try again later", "attempt": "2"}
    elif kind == "bounce":
        event |= {"type": "bounce", "status": "5.0.0", "reason": "550 unknown user"}
    elif kind == "dropped":
        event |= {"reason": "Bounced Address", "status": "5.0.0"}
    return event


@dataclass
class Batch:
    """One POST of SendGrid's: the same bytes (and signature) on every resend."""

    sender: int
    index: int
    events: list[dict[str, Any]]
    body: bytes
    headers: dict[str, str]
    accepted: bool = False
    answer: dict[str, int] | None = None

    @property
    def ids(self) -> set[str]:
        return {str(event["sg_event_id"]) for event in self.events}


def make_traffic(
    signer: Signer, *, senders: int, batches: int, size: int, duplicate_every: int, tag: str
) -> list[list[Batch]]:
    """Each sender's batches; every `duplicate_every`-th event repeats one already given to
    another sender (SendGrid delivers at least once, from several machines)."""
    traffic: list[list[Batch]] = []
    n = 0
    for sender in range(senders):
        own: list[Batch] = []
        for index in range(batches):
            events = []
            for position in range(size):
                if position % duplicate_every == duplicate_every - 1 and n > size:
                    events.append(make_event(tag, (n * 7919) % (n - size)))
                else:
                    events.append(make_event(tag, n))
                    n += 1
            body = body_of(events)
            own.append(Batch(sender, index, events, body, signer.headers(body)))
        traffic.append(own)
    # Interleave so that duplicates cross senders: sender s takes every `senders`-th batch.
    flat = [batch for own in traffic for batch in own]
    return [flat[s::senders] for s in range(senders)]


def unique_ids(traffic: list[list[Batch]]) -> set[str]:
    return {event_id for own in traffic for batch in own for event_id in batch.ids}


def events_sent(traffic: list[list[Batch]]) -> int:
    return sum(len(batch.events) for own in traffic for batch in own)


@dataclass
class Answer:
    batch: Batch
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    retry_after: str | None
    phase_sent: str
    phase_answered: str
    error: str | None = None


@dataclass
class SenderLog:
    answers: list[Answer] = field(default_factory=list)

    def accepted(self) -> list[Batch]:
        return [a.batch for a in self.answers if a.status is not None and 200 <= a.status < 300]

    def resends(self) -> int:
        """POSTs beyond the first of each batch."""
        return len(self.answers) - len({id(a.batch) for a in self.answers})

    def count(self, predicate: Callable[[Answer], bool]) -> int:
        return sum(1 for answer in self.answers if predicate(answer))


async def send_like_sendgrid(
    client: httpx.AsyncClient,
    path: str,
    batches: list[Batch],
    log: SenderLog,
    phase: Callable[[], str],
    *,
    on_accepted: Callable[[Batch], None] = lambda batch: None,
    max_attempts: int = 400,
    backoff_max: float = 0.4,
) -> None:
    """POST each batch until it gets a 2xx, resending after any other outcome.

    SendGrid's backoff grows to hours; here it is short so the test stays short, and bounded:
    a batch refused `max_attempts` times fails the test.
    """
    for batch in batches:
        for attempt in range(max_attempts):
            sent_in = phase()
            try:
                response = await client.post(path, content=batch.body, headers=batch.headers)
            except httpx.TransportError as exc:
                log.answers.append(Answer(batch, None, None, sent_in, phase(), repr(exc)))
            else:
                log.answers.append(
                    Answer(
                        batch,
                        response.status_code,
                        response.headers.get("Retry-After"),
                        sent_in,
                        phase(),
                        None if response.is_success else response.text[:300],
                    )
                )
                if response.is_success:
                    batch.accepted, batch.answer = True, response.json()
                    on_accepted(batch)
                    break
            await asyncio.sleep(min(0.02 * 2**attempt, backoff_max))
        else:
            raise AssertionError(f"batch {batch.sender}/{batch.index} refused {max_attempts} times")


def events_by_id(traffic: list[list[Batch]]) -> dict[str, str]:
    """Each unique event id sent, with its `event` type."""
    return {
        str(event["sg_event_id"]): str(event["event"])
        for own in traffic
        for batch in own
        for event in batch.events
    }


# --- a source, registered directly --------------------------------------------------------------


def scopes_client() -> httpx.AsyncClient:
    """Registration checks the key with SendGrid; answered here (as bench/ingest.py does)."""
    return httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda _: httpx.Response(200, json={"scopes": ["marketing.read"]})
        )
    )


def unique_source_name(prefix: str) -> str:
    """A source name (and so a schema, and a ClickHouse database) no other test uses: the
    ClickHouse server is one for the whole run."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


async def register(settings: Settings, signer: Signer, name: str) -> tuple[str, str, str]:
    """The source's id, schema and webhook path (the database is migrated by the fixture)."""
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with scopes_client() as http:
            registry = SourceRegistry(engine, settings, http)
            source, _ = await registry.create(
                SourceCreate(
                    name=name,
                    api_key="SG.faults.key",
                    webhook_verification_key=signer.verification_key,
                )
            )
            url = settings.webhook_url(source.id, registry.secrets.webhook_token(source))
    finally:
        await engine.dispose()
    return source.id, source.schema_name, "/" + url.split("/", 3)[3]


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment `python -m sendgrid_source` reads, for the test's database."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    return env | {
        "DATABASE_URL": settings.DATABASE_URL,
        "DATA_DIR": str(settings.DATA_DIR),
        "ADMIN_TOKEN": settings.admin_token,
        "SECRET_KEY": settings.secret_key,
        "LOG_LEVEL": "WARNING",
        **({"WAREHOUSE_URL": settings.WAREHOUSE_URL} if settings.WAREHOUSE_URL else {}),
        **extra,
    }


class Process:
    """A child process with its output in a file, killed at the end of the test whatever
    happens. Only this child is ever signalled, by its pid."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args, env=self.env, cwd=ROOT, stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    async def kill(self) -> int:
        """SIGKILL and wait for the exit (the kernel has then closed its sockets)."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        return await asyncio.to_thread(self.popen.wait, 10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


async def wait_until_up(process: Process, url: str, *, attempts: int = 300) -> None:
    """Poll `url` until it answers 200 (at most `attempts` times 0.1 s)."""
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(attempts):
            assert process.popen is not None
            if process.popen.poll() is not None:
                pytest.fail(f"{process.args} exited early:\n{process.output()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    pytest.fail(f"{url} did not come up:\n{process.output()}")


@pytest.fixture
async def processes() -> AsyncIterator[Callable[[list[str], dict[str, str], Path], Process]]:
    """Start children through this; all are killed when the test ends."""
    started: list[Process] = []

    def make(args: list[str], env: dict[str, str], log: Path) -> Process:
        process = Process(args, env, log)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


def sendgrid_source(command: str) -> list[str]:
    return [sys.executable, "-m", "sendgrid_source", command]
