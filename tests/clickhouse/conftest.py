"""Fixtures for the ClickHouse warehouse: a real server, a real cluster, and a current engine
beside them.

`scripts/test` starts a throwaway ClickHouse server (Debian's package, 18.16 today) and sets
TEST_CLICKHOUSE_URL, or TEST_CLICKHOUSE_UNAVAILABLE with the reason it could not; and a
cluster of two shards (two more servers), TEST_CLICKHOUSE_CLUSTER_URL (`?cluster=`) and
TEST_CLICKHOUSE_CLUSTER_SHARDS (each shard's directory: config.xml, pid), or
TEST_CLICKHOUSE_CLUSTER_UNAVAILABLE. `clickhouse_url` runs each test on both layouts.

Every statement the product sends to the server is also run, with the same rows, on the
current engine chdb embeds (`BothEngines`), so SQL that either release refuses, or a query
the two answer differently, fails the test. chdb is no server and has no cluster: on a
cluster the shards' local tables are made there as they are, and each Distributed table is
parsed there (EXPLAIN AST) and stands as a plain copy of its local table, so the cluster's
answers through Distributed tables are compared with one server's holding the same rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chdb import session as chdb_session
from clickhouse_driver.util.escape import escape_param

from shared.clickhouse import ClickHouse
from shared.clickhouse_layout import local_name
from shared.clickhouse_shards import cluster_shards


def _started(variable: str, what: str) -> str:
    url = os.environ.get(f"TEST_CLICKHOUSE_{variable}URL")
    if url:
        return url
    # scripts/test tried to start it: its failure fails these tests, so the suite never
    # passes with the ClickHouse warehouse untested. Only a pytest run outside scripts/test,
    # which starts none, skips them.
    unavailable = os.environ.get(f"TEST_CLICKHOUSE_{variable}UNAVAILABLE")
    if unavailable or os.environ.get("CI"):
        pytest.fail(f"{what} must run for these tests: {unavailable or 'no URL'}")
    pytest.skip(
        f"no {what}: TEST_CLICKHOUSE_{variable}URL is not set; scripts/test starts a throwaway one"
    )


def clickhouse_server_url() -> str:
    return _started("", "ClickHouse")


def clickhouse_cluster_url() -> str:
    return _started("CLUSTER_", "a ClickHouse cluster")


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, datetime):
        return f"'{value.strftime('%Y-%m-%d %H:%M:%S')}'"  # values are UTC
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


class _CurrentEngine:
    """chdb's in-process engine (a current ClickHouse release), one session per test run."""

    def __init__(self, path: Path) -> None:
        self.session = chdb_session.Session(str(path))  # type: ignore[no-untyped-call]
        # Held from a statement's start on the server till its end on this engine, so
        # connections running at once (two receivers) see both engines in the same state.
        self.in_step = asyncio.Lock()
        self.version = str(self._query("SELECT version()", "CSV")).strip().strip('"')
        self.statements: list[str] = []

    def run(self, sql: str) -> list[list[Any]]:
        self.statements.append(sql)
        text = str(self._query(sql, "JSONCompact")).strip()
        if not text:
            return []
        data: list[list[Any]] = json.loads(text)["data"]
        return data

    def _query(self, sql: str, output: str) -> Any:
        return self.session.query(sql, output)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.session.close()  # type: ignore[no-untyped-call]


def _comparable(value: Any) -> str | None:
    """A value as both engines give it: the driver's Python values, chdb's JSON ones (64-bit
    integers quoted, times as text in the column's time zone, UTC here)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def _answer(rows: Sequence[Sequence[Any]]) -> list[tuple[str | None, ...]]:
    return sorted((tuple(_comparable(v) for v in row) for row in rows), key=repr)


# `CREATE TABLE IF NOT EXISTS db.name (...) ENGINE = Distributed(...)`, as the layout writes it.
_DISTRIBUTED = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (`\w+`)\.`(\w+)` \(.*\) ENGINE = Distributed\(", re.S
)


class BothEngines(ClickHouse):
    """The product's ClickHouse connection, every statement also run on the current engine:
    DDL and queries as sent (client-side parameters substituted), inserts with the same rows.
    A SELECT must answer the same rows on both (in any order): both hold the same data."""

    engine: _CurrentEngine

    async def execute(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        async with self.engine.in_step:
            return await self._execute_on_both(sql, params)

    async def _execute_on_both(
        self, sql: str, params: dict[str, Any] | None
    ) -> list[tuple[Any, ...]]:
        rows = await super().execute(sql, params)
        literal = sql % {k: escape_param(v, _NoContext()) for k, v in (params or {}).items()}
        if "system.clusters" in sql:
            return rows  # chdb has no cluster to list
        distributed = _DISTRIBUTED.match(literal)
        if distributed:
            # chdb cannot create it (no cluster): it must parse, and a plain table of its
            # local table's definition stands in for it.
            self.engine.run(f"EXPLAIN AST {literal}")
            database, name = distributed.groups()
            self.engine.run(
                f"CREATE TABLE IF NOT EXISTS {database}.`{name}` AS {database}.`{local_name(name)}`"
            )
            return rows
        current = self.engine.run(literal)
        if sql.lstrip().upper().startswith("SELECT"):
            assert _answer(current) == _answer(rows), (literal, rows, current)
        return rows

    async def insert(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        values = ",".join("(" + ",".join(_literal(v) for v in row) + ")" for row in rows)
        async with self.engine.in_step:
            await super().insert(sql, rows)
            self.engine.run(f"{sql} {values}")


class _NoContext:
    """escape_param's context: only its date and time formatting reads it (not used here)."""

    server_info = None
    settings: dict[str, Any] = {}  # noqa: RUF012


@pytest.fixture(scope="session")
def current_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_CurrentEngine]:
    engine = _CurrentEngine(tmp_path_factory.mktemp("chdb"))
    yield engine
    engine.close()


@pytest.fixture(params=["single", "cluster"])
def clickhouse_url(request: pytest.FixtureRequest) -> str:
    """Each test on one server and on the cluster of two shards."""
    return clickhouse_server_url() if request.param == "single" else clickhouse_cluster_url()


@pytest.fixture
def both_engines(current_engine: _CurrentEngine, monkeypatch: pytest.MonkeyPatch) -> _CurrentEngine:
    """The ingest app's ClickHouse connections (the receiver's, the registry's, the counts')
    also run everything on the current engine."""

    current_engine.in_step = asyncio.Lock()  # this test's event loop's
    for user in ("ingest_service.app", "shared.registry", "shared.event_counts"):
        monkeypatch.setattr(f"{user}.ClickHouse", on_both(current_engine))
    return current_engine


def on_both(current: _CurrentEngine) -> type[BothEngines]:
    class Bound(BothEngines):
        engine = current

    return Bound


@pytest.fixture
async def clickhouse(clickhouse_url: str) -> AsyncIterator[ClickHouse]:
    """A connection of the test's own to the server, for reading what was stored."""
    connection = ClickHouse(clickhouse_url)
    yield connection
    await connection.close()


@pytest.fixture
def source_name() -> str:
    """A source name no other test uses: every test shares the one server."""
    return f"ch {uuid.uuid4().hex[:12]}"


async def stop_merges(clickhouse: ClickHouse, schema: str, table: str) -> None:
    """Stop merges of `schema.table` (of its local table on every shard of a cluster), so
    copies stay unmerged; `clickhouse` also stops them wherever else it runs statements."""
    await clickhouse.execute(f"SYSTEM STOP MERGES `{schema}`.`{table}`")
    cluster = clickhouse.target.cluster
    if cluster is None:
        return
    for shard in await cluster_shards(clickhouse, cluster):
        server = ClickHouse(clickhouse.target.at(shard.host, shard.port))
        try:
            await server.execute(f"SYSTEM STOP MERGES `{schema}`.`{local_name(table)}`")
        finally:
            await server.close()


class ShardServer:
    """One shard of the cluster scripts/test started, to stop and start again. Its pid is
    kept in the shard's `pid` file, which scripts/test reads to stop it at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.http_port = int((directory / "http_port").read_text())

    @classmethod
    def all(cls) -> list[ShardServer]:
        clickhouse_cluster_url()
        return [cls(Path(d)) for d in os.environ["TEST_CLICKHOUSE_CLUSTER_SHARDS"].split()]

    def _pid(self) -> int:
        return int((self.directory / "pid").read_text())

    def stop(self) -> None:
        """The server dies at once, as in a crash (a clean shutdown waits for its clients)."""
        pid = self._pid()
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)

    def start(self) -> None:
        with (self.directory / "log" / "stdout").open("ab") as log:
            server = subprocess.Popen(
                ["clickhouse-server", f"--config-file={self.directory / 'config.xml'}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.directory / "pid").write_text(f"{server.pid}\n")
        deadline = time.monotonic() + 30
        while not self.answers():
            assert server.poll() is None, f"the shard in {self.directory} did not start"
            assert time.monotonic() < deadline, f"the shard in {self.directory} did not answer"
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/ping", timeout=1) as r:
                return bool(r.read() == b"Ok.\n")
        except OSError:
            return False


def _alive(pid: int) -> bool:
    """The process runs (a stopped server its parent has not reaped yet is a zombie: gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
