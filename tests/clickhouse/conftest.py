"""Fixtures for the ClickHouse warehouse: a real server and a current engine beside it.

`scripts/test` starts a throwaway ClickHouse server (Debian's package, 18.16 today) and sets
TEST_CLICKHOUSE_URL, or TEST_CLICKHOUSE_UNAVAILABLE with the reason it could not. Every
statement the product sends to that server is also run, with the same rows, on the current
engine chdb embeds (`BothEngines`), so SQL that either release refuses, or a query the two
answer differently, fails the test.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chdb import session as chdb_session
from clickhouse_driver.util.escape import escape_param

from shared.clickhouse import ClickHouse


def clickhouse_server_url() -> str:
    url = os.environ.get("TEST_CLICKHOUSE_URL")
    if url:
        return url
    # scripts/test tried to start a server: its failure fails these tests, so the suite never
    # passes with the ClickHouse warehouse untested. Only a pytest run outside scripts/test,
    # which starts no server, skips them.
    unavailable = os.environ.get("TEST_CLICKHOUSE_UNAVAILABLE")
    if unavailable or os.environ.get("CI"):
        pytest.fail(f"ClickHouse must run for these tests: {unavailable or 'no server URL'}")
    pytest.skip(
        "no ClickHouse server: TEST_CLICKHOUSE_URL is not set; scripts/test starts a throwaway one"
    )


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


class BothEngines(ClickHouse):
    """The product's ClickHouse connection, every statement also run on the current engine:
    DDL and queries as sent (client-side parameters substituted), inserts with the same rows.
    A SELECT must answer the same rows on both (in any order): both hold the same data."""

    engine: _CurrentEngine

    async def execute(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        rows = await super().execute(sql, params)
        literal = sql % {k: escape_param(v, _NoContext()) for k, v in (params or {}).items()}
        current = self.engine.run(literal)
        if sql.lstrip().upper().startswith("SELECT"):
            assert _answer(current) == _answer(rows), (literal, rows, current)
        return rows

    async def insert(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await super().insert(sql, rows)
        values = ",".join("(" + ",".join(_literal(v) for v in row) + ")" for row in rows)
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


@pytest.fixture
def clickhouse_url() -> str:
    return clickhouse_server_url()


@pytest.fixture
def both_engines(current_engine: _CurrentEngine, monkeypatch: pytest.MonkeyPatch) -> _CurrentEngine:
    """The ingest app's ClickHouse connections (the receiver's, the registry's, the counts')
    also run everything on the current engine."""

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
