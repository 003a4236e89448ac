"""Source names chosen to attack SQL are refused with 422 before any SQL runs.

A source's name becomes its schema's name, composed into DDL (`CREATE SCHEMA x`, SQLite's
`ATTACH DATABASE ? AS x`). tests/test_sources_api.py already refuses six names; here every
kind of attack is tried, on both backends, and "before any SQL" is proven by the engine itself:
a `before_cursor_execute` listener counts every statement, and pool `checkout` events count
every connection taken (SQLite's ATTACH runs on checkout, outside the cursor events). A refused
name must cause none of either, and no call to SendGrid.

Also here: every SQL keyword either backend cannot take as a bare schema name, and the
per-source `sync_interval`, whose extreme values reach the scheduler's datetime arithmetic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import api_key

HOSTILE_NAMES: dict[str, str] = {
    # Quoting and statement breaking.
    "single-quote": "x'; DROP TABLE sources; --",
    "double-quote": 'send"grid',
    "quoted-identifier": '"public"',
    "semicolon": "sendgrid; SELECT 1",
    "block-comment": "send/**/grid",
    "backslash": "send\\grid",
    "backtick": "send`grid",
    "dot": "public.sources",
    "parenthesis": "sendgrid)",
    "dollar-quote": "$$sendgrid$$",
    "percent": "100% sendgrid",
    "nul": "send\x00grid",
    "newline": "send\ngrid",
    "carriage-return": "send\rgrid",
    "tab-only": "\t",
    # Unicode look-alikes and invisible characters.
    "cyrillic-e": "s\u0435ndgrid",
    "cyrillic-s": "\u0455endgrid",
    "greek-omicron": "sendgr\u03bfd",
    "full-width": "\uff33\uff45\uff4e\uff44\uff27\uff52\uff49\uff44",
    "full-width-digit": "sendgrid\uff11",
    "arabic-indic-digit": "sendgrid\u0663",
    "superscript-two": "sendgrid\u00b2",
    "kelvin-sign": "\u212aey",
    "long-s": "\u017fendgrid",
    "dotless-i": "sendgr\u0131d",
    "dotted-capital-i": "\u0130nfo",
    "ligature-fi": "\ufb01nance",
    "combining-accent": "sende\u0301",
    "precomposed-accent": "send\u00e9",
    "rtl-override": "send\u202egrid",
    "rtl-mark": "\u200fsendgrid",
    "zero-width-space": "send\u200bgrid",
    "zero-width-joiner": "send\u200dgrid",
    "byte-order-mark": "\ufeffsendgrid",
    "no-break-space": "send\u00a0grid",
    "ideographic-space": "send\u3000grid",
    "emoji": "sendgrid \U0001f4e7",
    # Reserved schemas, however spelled.
    "public": "public",
    "public-upper": "PUBLIC",
    "public-padded": "  Public  ",
    "pg_catalog": "pg_catalog",
    "pg-catalog-spaced": "PG Catalog",
    "pg_toast": "pg-toast",
    "pg_temp": "pg_temp_3",
    "information_schema": "information_schema",
    "information-schema-spaced": "Information Schema",
    "sendgrid_source": "sendgrid_source",
    "sendgrid-source-title": "SendGrid Source",
    "sendgrid-source-dashed": "sendgrid-source",
    "sqlite-main": "main",
    "sqlite-temp": "temp",
    "sqlite_master": "sqlite_master",
    "sqlite_sequence": "sqlite_sequence",
    # Shape.
    "64-chars": "a" * 64,
    "100-chars": "a" * 100,
    "101-chars": "a" * 101,
    "65-chars-once-spaces-collapse": "a" * 40 + " " * 30 + "b" * 24,
    "digit-first": "1sendgrid",
    "empty": "",
    "spaces": "   ",
    "dashes": "---",
    "underscores": "___",
}

# Keywords PostgreSQL reserves (pg_get_keywords() catcode R and T, PostgreSQL 15-17): none
# can be a bare schema name (`CREATE SCHEMA window` is a syntax error).
POSTGRES_RESERVED = frozenset(
    {
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
        "authorization", "binary", "both", "case", "cast", "check", "collate", "collation",
        "column", "concurrently", "constraint", "create", "cross", "current_catalog",
        "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
        "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end",
        "except", "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant",
        "group", "having", "ilike", "in", "initially", "inner", "intersect", "into", "is",
        "isnull", "join", "lateral", "leading", "left", "like", "limit", "localtime",
        "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only", "or",
        "order", "outer", "overlaps", "placing", "primary", "references", "returning", "right",
        "select", "session_user", "similar", "some", "symmetric", "system_user", "table",
        "tablesample", "then", "to", "trailing", "true", "union", "unique", "user", "using",
        "variadic", "verbose", "when", "where", "window", "with"
    }
)  # fmt: skip
# SQLite keywords without `%fallback ID` in its grammar (3.40): `ATTACH ... AS commit` fails.
SQLITE_RESERVED = frozenset(
    {
        "add", "all", "alter", "and", "as", "autoincrement", "between", "case", "cast", "check",
        "collate", "commit", "constraint", "create", "current_date", "current_time",
        "current_timestamp", "default", "deferrable", "delete", "distinct", "drop", "else",
        "escape", "except", "exists", "foreign", "from", "group", "having", "if", "in", "index",
        "insert", "intersect", "into", "is", "isnull", "join", "limit", "not", "nothing",
        "notnull", "null", "on", "or", "order", "primary", "raise", "references", "returning",
        "select", "set", "table", "temp", "then", "to", "transaction", "union", "unique",
        "update", "using", "values", "when", "where"
    }
)  # fmt: skip


@dataclass
class SqlCounter:
    """Statements and connection checkouts seen by an engine, with the statements' text."""

    statements: list[str] = field(default_factory=list)
    checkouts: int = 0

    def reset(self) -> None:
        self.statements.clear()
        self.checkouts = 0


@pytest.fixture
def sql(ingest_app: FastAPI) -> Iterator[SqlCounter]:
    engine = ingest_app.state.engine.sync_engine
    counter = SqlCounter()

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        counter.statements.append(statement)

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        counter.checkouts += 1

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    event.listen(engine.pool, "checkout", checkout)
    yield counter
    event.remove(engine, "before_cursor_execute", before_cursor_execute)
    event.remove(engine.pool, "checkout", checkout)


@pytest.fixture
async def client(ingest_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: an unhandled error is reported as the 500 it would be.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingest_app, raise_app_exceptions=False),
        base_url="http://ingest.test",
        headers={"Authorization": "Bearer " + ingest_app.state.settings.admin_token},
    ) as http:
        yield http


async def create(client: httpx.AsyncClient, name: str, **extra: Any) -> httpx.Response:
    return await client.post("/sources", json={"name": name, "api_key": api_key(), **extra})


def is_ddl_or_attach(statement: str) -> bool:
    words = statement.lstrip().split(None, 1)
    return bool(words) and words[0].upper() in {
        "CREATE", "DROP", "ALTER", "ATTACH", "DETACH", "INSERT", "UPDATE", "DELETE", "PRAGMA",
    }  # fmt: skip


async def test_the_counter_sees_every_statement_of_a_valid_registration(
    client: httpx.AsyncClient, sql: SqlCounter, sendgrid: respx.MockRouter
) -> None:
    """The control: without it, a listener that sees nothing would pass every test below."""
    response = await create(client, "a" * 63)
    assert response.status_code == 201, response.text
    assert response.json()["schema"] == "a" * 63
    assert sql.checkouts >= 1
    assert any(s.lstrip().upper().startswith("CREATE") for s in sql.statements)
    assert any("INSERT INTO" in s.upper() for s in sql.statements)
    assert sendgrid.calls.call_count == 1
    print(f"\nvalid registration: {len(sql.statements)} statements, {sql.checkouts} checkouts")


async def test_hostile_names_are_422_before_any_sql(
    client: httpx.AsyncClient, sql: SqlCounter, sendgrid: respx.MockRouter
) -> None:
    answered: dict[str, tuple[int, str, int, int, int]] = {}
    for label, name in HOSTILE_NAMES.items():
        sql.reset()
        calls = sendgrid.calls.call_count
        response = await create(client, name)
        # (status, error code, statements, connection checkouts, calls to SendGrid)
        answered[label] = (
            response.status_code,
            response.json().get("error", {}).get("code", ""),
            len(sql.statements),
            sql.checkouts,
            sendgrid.calls.call_count - calls,
        )
    expected = (422, "invalid_request", 0, 0, 0)
    assert {k: v for k, v in answered.items() if v != expected} == {}
    assert (await client.get("/sources")).json()["sources"] == []


async def test_renaming_to_a_hostile_name_is_422_without_any_schema_statement(
    client: httpx.AsyncClient, sql: SqlCounter
) -> None:
    created = (await create(client, "SendGrid")).json()
    for label, name in HOSTILE_NAMES.items():
        sql.reset()
        response = await client.patch(f"/sources/{created['id']}", json={"name": name})
        assert response.status_code == 422, (label, response.text)
        # Reading the source to rename is allowed; touching any schema or row is not.
        assert [s for s in sql.statements if is_ddl_or_attach(s)] == [], label
        assert all(s.lstrip().upper().startswith("SELECT") for s in sql.statements), label
    after = (await client.get(f"/sources/{created['id']}")).json()
    assert (after["name"], after["schema"]) == ("SendGrid", "sendgrid")


async def test_every_sql_keyword_is_refused_before_any_sql(
    client: httpx.AsyncClient, ingest_app: FastAPI, sql: SqlCounter, backend: str
) -> None:
    """README: reserved names, SQL keywords included, are refused. A keyword that slips
    through breaks registration (PostgreSQL: 500 on CREATE SCHEMA) or, on SQLite, every later
    request (the bad name is ATTACHed on each checkout: 503 until restart)."""
    keywords = sorted(POSTGRES_RESERVED | SQLITE_RESERVED)
    if backend == "postgres":
        async with ingest_app.state.engine.connect() as connection:
            live = await connection.scalars(
                sa.text("SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')")
            )
            keywords = sorted(set(keywords) | set(live))
    sql.reset()
    not_refused = {}
    for keyword in keywords:
        for spelling in (keyword, keyword.upper(), keyword.replace("_", " ").title()):
            response = await create(client, spelling)
            if response.status_code != 422:
                not_refused[spelling] = response.status_code
    assert not_refused == {}, f"{len(not_refused)} keywords not refused: {not_refused}"
    assert (sql.statements, sql.checkouts) == ([], 0)
    assert (await client.get("/sources")).status_code == 200


@pytest.mark.parametrize(
    "interval",
    [0, -60, "0s", "0.4s", "30s", 1e15, "99999999999d", "9999999d", True],
    ids=["zero", "negative", "zero-text", "rounds-to-zero", "under-a-minute", "1e15-seconds",
         "overflows-timedelta", "overflows-datetime", "boolean"],
)  # fmt: skip
async def test_an_unusable_sync_interval_is_422(
    client: httpx.AsyncClient, sql: SqlCounter, interval: object
) -> None:
    """SYNC_INTERVAL itself must be at least 1m; a source's own interval must be usable too:
    the scheduler adds it to datetimes (a 9999999-day interval overflows them, so the
    reconcile job would raise on every pass and leave every later source unscheduled)."""
    response = await create(client, "SendGrid", sync_interval=interval)
    assert response.status_code == 422, response.text
    assert "sync_interval" in response.json()["error"]["message"]
    assert sql.statements == []
    created = (await create(client, "Other")).json()
    patched = await client.patch(f"/sources/{created['id']}", json={"sync_interval": interval})
    assert patched.status_code == 422, patched.text


@pytest.mark.parametrize(("interval", "seconds"), [("1m", 60), ("3h", 10800), (86400, 86400)])
async def test_a_usable_sync_interval_is_kept(
    client: httpx.AsyncClient, interval: object, seconds: int
) -> None:
    response = await create(client, "SendGrid", sync_interval=interval)
    assert response.status_code == 201, response.text
    assert response.json()["sync_interval_seconds"] == seconds
