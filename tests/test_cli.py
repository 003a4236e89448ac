"""The `sendgrid-source` command: migrate, sources, configuration errors, and `up` end to end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from sendgrid_source.cli import app
from shared.collections import NAMES
from shared.db import create_engine, sqlite_schema_path
from shared.events import EVENT_TABLES
from shared.settings import Settings, get_settings
from shared.tables import (
    CONTROL_SCHEMA,
    SOURCE_SCHEMA_VERSION,
    backfills,
    source_tables,
    sources,
    sync_cursors,
    webhook_findings,
)
from tests.conftest import SENDGRID_TEST_URL, WEBHOOK_SCOPES, api_key, fresh_postgres_database
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.webhook_helpers import Signer

Invoke = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoke:
    """Run the command in-process (respx sees its HTTP calls) with a clean configuration."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SENDGRID_API_URL", SENDGRID_TEST_URL)
    monkeypatch.setenv("PUBLIC_URL", "http://ingest.test")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, **env: str) -> Result:
        get_settings.cache_clear()
        try:
            return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        finally:
            get_settings.cache_clear()

    return invoke


@pytest.fixture
def on_database(cli: Invoke, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The command, on a migrated database (SQLite and PostgreSQL)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    return cli


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database that was never migrated."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'warehouse.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def query(database_url: str, statement: Any) -> list[sa.Row[Any]]:
    async def run() -> list[sa.Row[Any]]:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(statement)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def schema_exists(database_url: str, schema: str) -> bool:
    if database_url.startswith("sqlite"):
        return sqlite_schema_path(database_url, schema).exists()
    found = query(
        database_url,
        sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s").bindparams(
            s=schema
        ),
    )
    return bool(found)


def webhook_url(output: str) -> str:
    match = re.search(r"webhook URL\s+(\S+)", output)
    assert match is not None, output
    return match[1]


# --- migrate -------------------------------------------------------------------------------


def test_migrate_twice_is_idempotent(
    cli: Invoke,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: respx.MockRouter,
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    first = cli("migrate")
    assert first.exit_code == 0, first.output
    assert "upgraded from an empty database to 0005" in first.output

    assert cli("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    # An older source schema is brought up to date by the next migrate, and only by it.
    query(empty_database_url, sources.update().values(schema_version=0))
    second = cli("migrate")
    third = cli("migrate")

    assert second.exit_code == 0, second.output
    assert "already at revision 0005" in second.output
    assert "source schemas: upgraded sendgrid" in second.output
    assert third.exit_code == 0, third.output
    assert "already at revision 0005" in third.output
    assert "source schemas: all up to date" in third.output
    rows = query(empty_database_url, sa.select(sources.c.schema_version))
    assert [row.schema_version for row in rows] == [SOURCE_SCHEMA_VERSION]
    assert query(empty_database_url, sa.text("SELECT count(*) FROM sendgrid.activity")) == [(0,)]


# Alembic's own table, to set the revision a test's database claims to be at.
ALEMBIC_VERSION = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num"))


def claim_revision(url: str, revision: str, schema_version: int | None = None) -> None:
    """Make the database say it was migrated to `revision` (and its sources' schemas to
    `schema_version`), after a test took away what later ones added."""
    query(url, ALEMBIC_VERSION.update().values(version_num=revision))
    if schema_version is not None:
        query(url, sources.update().values(schema_version=schema_version))


def migrated_with_a_source(cli: Invoke, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database migrated to head holding one source, before a test ages part of it."""
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli("migrate").exit_code == 0
    assert cli("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0


def test_migrate_brings_a_version_1_source_schema_to_content_hashes(
    cli: Invoke,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: respx.MockRouter,
) -> None:
    migrated_with_a_source(cli, empty_database_url, monkeypatch)
    objects = ("lists", "segments", "recipients", "campaigns")
    # What version 1 created: the object tables without `content_hash`.
    for table in objects:
        query(empty_database_url, sa.text(f"ALTER TABLE sendgrid.{table} DROP COLUMN content_hash"))
    query(empty_database_url, sources.update().values(schema_version=1))

    result = cli("migrate")

    assert result.exit_code == 0, result.output
    assert "source schemas: upgraded sendgrid" in result.output
    for table in objects:
        assert (
            query(empty_database_url, sa.text(f"SELECT content_hash FROM sendgrid.{table}")) == []
        )
    rows = query(empty_database_url, sa.select(sources.c.schema_version))
    assert [row.schema_version for row in rows] == [SOURCE_SCHEMA_VERSION]


def test_migrate_brings_a_version_3_source_schema_to_the_rejected_index(
    cli: Invoke,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: respx.MockRouter,
) -> None:
    migrated_with_a_source(cli, empty_database_url, monkeypatch)
    # What version 3 created: `rejected` without its index on received_at.
    postgres = empty_database_url.startswith("postgresql")
    drop = "DROP INDEX sendgrid.ix_rejected_received_at"
    query(empty_database_url, sa.text(drop))
    query(empty_database_url, sources.update().values(schema_version=3))
    listed = (
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'sendgrid' AND tablename = 'rejected'"
        if postgres
        else "SELECT name FROM sendgrid.sqlite_master WHERE type = 'index' AND tbl_name='rejected'"
    )
    assert "ix_rejected_received_at" not in {
        row[0] for row in query(empty_database_url, sa.text(listed))
    }

    result = cli("migrate")

    assert result.exit_code == 0, result.output
    assert "source schemas: upgraded sendgrid" in result.output
    assert "ix_rejected_received_at" in {
        row[0] for row in query(empty_database_url, sa.text(listed))
    }
    rows = query(empty_database_url, sa.select(sources.c.schema_version))
    assert [row.schema_version for row in rows] == [SOURCE_SCHEMA_VERSION]


def test_migrate_brings_a_first_release_control_schema_to_managed_webhooks(
    cli: Invoke,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: respx.MockRouter,
) -> None:
    migrated_with_a_source(cli, empty_database_url, monkeypatch)
    # What revision 0001 of the first release created: no managed-webhook columns or findings.
    added = (
        "webhook_id",
        "webhook_managed",
        "webhook_repair",
        "webhook_test_status",
        "webhook_tested_at",
        "webhook_checked_at",
    )
    for column in added:
        query(
            empty_database_url,
            sa.text(f"ALTER TABLE {_control(empty_database_url, 'sources')} DROP COLUMN {column}"),
        )
    query(
        empty_database_url,
        sa.text(f"DROP TABLE {_control(empty_database_url, 'webhook_findings')}"),
    )
    claim_revision(empty_database_url, "0001")

    result = cli("migrate")

    assert result.exit_code == 0, result.output
    assert "upgraded from 0001 to 0005" in result.output
    rows = query(empty_database_url, sa.select(sources.c.name, sources.c.webhook_repair))
    assert [(row.name, row.webhook_repair) for row in rows] == [("SendGrid", False)]
    assert query(empty_database_url, sa.select(sa.func.count()).select_from(webhook_findings)) == [
        (0,)
    ]


def test_migrate_brings_a_0002_database_to_every_collection(
    cli: Invoke,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: respx.MockRouter,
) -> None:
    migrated_with_a_source(cli, empty_database_url, monkeypatch)
    # What revision 0002 and source schema version 2 had: no chosen collections, no cursors,
    # and only the four object tables of the first release.
    control = _control(empty_database_url, "sources")
    query(empty_database_url, sa.text(f"ALTER TABLE {control} DROP COLUMN collections"))
    query(empty_database_url, sa.text(f"DROP TABLE {_control(empty_database_url, 'sync_cursors')}"))
    added = [name for name in NAMES if name not in ("lists", "segments", "recipients", "campaigns")]
    for table in added:
        query(empty_database_url, sa.text(f"DROP TABLE sendgrid.{table}"))
    claim_revision(empty_database_url, "0002", 2)

    result = cli("migrate")

    assert result.exit_code == 0, result.output
    assert "upgraded from 0002 to 0005" in result.output
    assert "source schemas: upgraded sendgrid" in result.output
    rows = query(empty_database_url, sa.select(sources.c.collections, sources.c.schema_version))
    assert [(row.collections, row.schema_version) for row in rows] == [
        (None, SOURCE_SCHEMA_VERSION)
    ]
    assert query(empty_database_url, sa.select(sa.func.count()).select_from(sync_cursors)) == [(0,)]
    for table in added:
        assert query(empty_database_url, sa.text(f"SELECT count(*) FROM sendgrid.{table}")) == [
            (0,)
        ]


def event_indexes(database_url: str, schema: str) -> dict[str, set[str]]:
    """Each event table of `schema` -> the names of its indexes."""

    async def run() -> dict[str, set[str]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:

                def inspect(sync_connection: sa.Connection) -> dict[str, set[str]]:
                    inspector = sa.inspect(sync_connection)
                    return {
                        table: {str(i["name"]) for i in inspector.get_indexes(table, schema)}
                        for table in EVENT_TABLES
                    }

                return await connection.run_sync(inspect)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def index_columns(database_url: str, schema: str, table: str) -> dict[str, list[str]]:
    """A table's indexes -> their columns, in order."""

    async def run() -> dict[str, list[str]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:

                def inspect(sync_connection: sa.Connection) -> dict[str, list[str]]:
                    found = sa.inspect(sync_connection).get_indexes(table, schema)
                    return {str(i["name"]): [str(c) for c in i["column_names"]] for i in found}

                return await connection.run_sync(inspect)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrate_brings_a_0003_database_to_reconciliation(
    cli: Invoke,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: respx.MockRouter,
) -> None:
    migrated_with_a_source(cli, empty_database_url, monkeypatch)
    # What revision 0003 and source schema version 3 had: no statistics time zone nor
    # reconciliation on `sources`, no `timestamp` index on the event tables, no completeness.
    control = _control(empty_database_url, "sources")
    for column in ("stats_timezone", "completeness_checked_at", "completeness_error"):
        query(empty_database_url, sa.text(f"ALTER TABLE {control} DROP COLUMN {column}"))
    for table in EVENT_TABLES:
        query(empty_database_url, sa.text(f"DROP INDEX sendgrid.ix_{table}_timestamp"))
    query(empty_database_url, sa.text("DROP TABLE sendgrid.completeness"))
    claim_revision(empty_database_url, "0003", 3)
    assert not any("ix_delivered_timestamp" in names for names in
                   event_indexes(empty_database_url, "sendgrid").values())  # fmt: skip

    result = cli("migrate")

    assert result.exit_code == 0, result.output
    assert "upgraded from 0003 to 0005" in result.output
    assert "source schemas: upgraded sendgrid" in result.output
    rows = query(
        empty_database_url,
        sa.select(sources.c.stats_timezone, sources.c.completeness_error, sources.c.schema_version),
    )
    assert [tuple(row) for row in rows] == [("UTC", None, SOURCE_SCHEMA_VERSION)]
    for table, names in event_indexes(empty_database_url, "sendgrid").items():
        assert f"ix_{table}_timestamp" in names
    assert query(empty_database_url, sa.text("SELECT count(*) FROM sendgrid.completeness")) == [
        (0,)
    ]


def _control(database_url: str, table: str) -> str:
    """A control table's name as raw SQL must write it: schema-qualified on PostgreSQL."""
    return f"{CONTROL_SCHEMA}.{table}" if database_url.startswith("postgresql") else table


def test_sources_need_a_migrated_database(
    cli: Invoke, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    result = cli("sources", "list")
    assert result.exit_code == 1
    assert "run migrate first" in result.stderr


def test_sources_need_an_up_to_date_database(on_database: Invoke, database_url: str) -> None:
    # A Table (not sa.table) so PostgreSQL's translation to the control schema applies.
    claim_revision(database_url, "0000")
    result = on_database("sources", "list")
    assert result.exit_code == 1
    assert "the database is at revision 0000, not 0005: run migrate first" in result.stderr


# --- sources -------------------------------------------------------------------------------


def test_sources_add_then_list_never_shows_the_key(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    key = api_key()
    added = on_database("sources", "add", "SendGrid EU", "--api-key", key, "--region", "eu")
    listed = on_database("sources", "list")

    assert added.exit_code == 0, added.output
    assert "schema       sendgrid_eu" in added.output
    url = webhook_url(added.output)
    assert url.startswith("http://ingest.test/webhooks/")
    assert sendgrid.calls.last.request.headers["Authorization"] == f"Bearer {key}"
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "SendGrid EU" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == ["SendGrid EU", "sendgrid_eu", "eu", url, "no"]
    assert key not in added.output + listed.output
    stored = query(database_url, sa.select(sources))
    assert len(stored) == 1
    assert key not in repr(stored[0])


def test_sources_add_asks_for_the_key_without_echoing_it(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    key = api_key()
    result = on_database("sources", "add", "SendGrid", input=f"  {key}  \n")

    assert result.exit_code == 0, result.output
    assert "SendGrid API key" in result.output
    assert key not in result.output
    # The pasted key was trimmed before SendGrid saw it.
    assert sendgrid.calls.last.request.headers["Authorization"] == f"Bearer {key}"
    assert [row.name for row in query(database_url, sa.select(sources.c.name))] == ["SendGrid"]


def test_sources_add_shows_missing_scopes(on_database: Invoke, sendgrid: respx.MockRouter) -> None:
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": ["mail.send"]})
    result = on_database("sources", "add", "SendGrid", "--api-key", api_key())
    assert result.exit_code == 0, result.output
    assert "warning: the API key lacks the marketing.read scope" in result.output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Select", "the schema name 'select' is reserved"),
        ("SendGrid ✉", "may hold only ASCII letters, digits, spaces, '-' and '_'"),
        ("SendGrid", "schema 'sendgrid' is already used by the source 'SendGrid'"),
    ],
)
def test_sources_add_refuses_a_bad_name(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter, name: str, message: str
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    result = on_database("sources", "add", name, "--api-key", api_key())
    assert result.exit_code == 1
    assert message in result.stderr
    assert [row.name for row in query(database_url, sa.select(sources.c.name))] == ["SendGrid"]


def test_sources_add_reports_a_rejected_key(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    sendgrid.get("/v3/scopes").respond(401, json={"errors": [{"message": "unauthorized"}]})
    key = api_key()
    result = on_database("sources", "add", "SendGrid", "--api-key", key)
    assert result.exit_code == 1
    assert "SendGrid rejected this API key" in result.stderr
    assert key not in result.output
    assert query(database_url, sa.select(sources.c.id)) == []


def test_sources_add_refuses_a_malformed_key_naming_the_option(
    on_database: Invoke, database_url: str
) -> None:
    result = on_database("sources", "add", "SendGrid", "--api-key", "SG.half key")
    assert result.exit_code == 1
    assert "--api-key: api_key holds whitespace inside it" in result.stderr
    assert "SG.half key" not in result.output
    assert query(database_url, sa.select(sources.c.id)) == []


def test_sources_remove_keeps_data_unless_asked(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    for name in ("SendGrid", "Marketing"):
        assert on_database("sources", "add", name, "--api-key", api_key()).exit_code == 0
    (source_id,) = query(database_url, sa.select(sources.c.id).where(sources.c.name == "SendGrid"))

    declined = on_database("sources", "remove", "SendGrid", input="n\n")
    assert declined.exit_code == 1
    assert "SendGrid" in on_database("sources", "list").output

    stopped = on_database("sources", "remove", "SendGrid", "--yes")
    assert stopped.exit_code == 0, stopped.output
    listed = on_database("sources", "list").output
    assert "Marketing" in listed
    assert "SendGrid" not in listed
    assert schema_exists(database_url, "sendgrid")

    again = on_database("sources", "remove", "SendGrid", "--yes")
    assert again.exit_code == 1
    assert "already removed" in again.stderr
    assert "--drop-data" in again.stderr

    dropped = on_database("sources", "remove", source_id.id, "--drop-data", "--yes")
    assert dropped.exit_code == 0, dropped.output
    assert not schema_exists(database_url, "sendgrid")
    assert [row.name for row in query(database_url, sa.select(sources.c.name))] == ["Marketing"]
    # The name is free again.
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0


@pytest.fixture
def webhook_account(sendgrid: respx.MockRouter) -> FakeAccount:
    """An account whose key has every webhook scope; no receiver runs, so the test batch
    never arrives."""
    fake = FakeAccount(SENDGRID_TEST_URL)
    fake.install(sendgrid)
    scopes = ["marketing.read", "scopes.read", *WEBHOOK_SCOPES]
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": scopes})
    return fake


def test_sources_add_configures_the_webhook(
    on_database: Invoke, database_url: str, webhook_account: FakeAccount
) -> None:
    added = on_database(
        "sources", "add", "SendGrid", "--api-key", api_key(), "--configure-webhook",
        WEBHOOK_TEST_TIMEOUT="0.3",
    )  # fmt: skip

    assert added.exit_code == 0, added.output
    [webhook] = webhook_account.webhooks.webhooks.values()
    assert webhook["url"] == webhook_url(added.output)
    assert f"managed      yes: webhook {webhook['id']} (created)" in added.output
    assert "signed       yes" in added.output
    assert "test batch   not_arrived" in added.output
    assert "WEBHOOK_TEST_TIMEOUT" in added.output
    assert "paste the webhook URL" not in added.output
    [row] = query(database_url, sa.select(sources))
    assert (row.webhook_id, row.webhook_managed) == (webhook["id"], "created")
    assert row.webhook_verification_key == webhook["public_key"]
    assert row.webhook_test_status == "not_arrived"


def test_sources_webhook_adopts_a_named_webhook_and_remove_keeps_it(
    on_database: Invoke, database_url: str, webhook_account: FakeAccount
) -> None:
    other = webhook_account.webhooks.add("https://other.example/hook")
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0

    adopted = on_database(
        "sources", "webhook", "SendGrid", "--adopt", other["id"], WEBHOOK_TEST_TIMEOUT="0.3"
    )
    kept = on_database("sources", "remove", "SendGrid", "--remove-webhook", "--yes")

    assert adopted.exit_code == 0, adopted.output
    assert f"managed      yes: webhook {other['id']} (adopted)" in adopted.output
    [row] = query(database_url, sa.select(sources))
    assert f"/webhooks/{row.id}/" in webhook_account.webhooks.webhooks[other["id"]]["url"]
    assert kept.exit_code == 0, kept.output
    assert "was adopted, not created" in kept.output
    assert webhook_account.webhooks.deleted == []


def test_sources_remove_deletes_the_created_webhook(
    on_database: Invoke, webhook_account: FakeAccount
) -> None:
    added = on_database(
        "sources", "add", "SendGrid", "--api-key", api_key(), "--configure-webhook",
        WEBHOOK_TEST_TIMEOUT="0.3",
    )  # fmt: skip
    [webhook_id] = webhook_account.webhooks.webhooks

    refused = on_database("sources", "remove", "SendGrid", "--remove-adopted-webhook", "--yes")
    removed = on_database("sources", "remove", "SendGrid", "--remove-webhook", "--yes")

    assert added.exit_code == 0, added.output
    assert refused.exit_code == 1
    assert "goes with --remove-webhook" in refused.stderr
    assert removed.exit_code == 0, removed.output
    assert f"webhook: webhook {webhook_id} (created) was deleted from SendGrid" in removed.output
    assert webhook_account.webhooks.deleted == [webhook_id]


def test_sources_update_turns_webhook_repair_on_and_off(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0

    on = on_database("sources", "update", "SendGrid", "--webhook-repair")
    [row_on] = query(database_url, sa.select(sources.c.webhook_repair))
    off = on_database("sources", "update", "SendGrid", "--no-webhook-repair")
    [row_off] = query(database_url, sa.select(sources.c.webhook_repair))

    assert on.exit_code == 0, on.output
    assert off.exit_code == 0, off.output
    assert (row_on.webhook_repair, row_off.webhook_repair) == (True, False)


def test_sources_choose_their_collections(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    added = on_database(
        "sources", "add", "SendGrid", "--api-key", api_key(), "--collections", "templates, lists"
    )
    [chosen] = query(database_url, sa.select(sources.c.collections))
    unknown = on_database("sources", "update", "SendGrid", "--collections", "lists,bounces")
    narrowed = on_database("sources", "update", "SendGrid", "--collections", "stats_daily")
    everything = on_database("sources", "update", "SendGrid", "--all-collections")
    [after] = query(database_url, sa.select(sources.c.collections))

    assert added.exit_code == 0, added.output
    assert chosen.collections == ["lists", "templates"]
    assert unknown.exit_code == 1
    assert "--collections: unknown collection(s) 'bounces'" in unknown.stderr
    assert "suppression_bounces" in unknown.stderr  # the valid names are listed
    assert "collections  stats_daily\n" in narrowed.output
    assert everything.exit_code == 0, everything.output
    assert after.collections is None
    assert f"collections  {', '.join(NAMES)}" in everything.output


def test_sources_take_the_time_zone_of_their_statistics(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    added = on_database(
        "sources", "add", "SendGrid", "--api-key", api_key(), "--stats-timezone", "Europe/Paris"
    )
    refused = on_database("sources", "update", "SendGrid", "--stats-timezone", "Paris")
    changed = on_database("sources", "update", "SendGrid", "--stats-timezone", "America/New_York")
    shown = on_database("sources", "show", "SendGrid", "--json")

    assert added.exit_code == 0, added.output
    assert refused.exit_code == 1
    assert "--stats-timezone: 'Paris' is not an IANA time zone name" in refused.stderr
    assert changed.exit_code == 0, changed.output
    assert "stats zone   America/New_York" in changed.output
    assert json.loads(shown.output)["stats_timezone"] == "America/New_York"
    assert [row.stats_timezone for row in query(database_url, sa.select(sources))] == [
        "America/New_York"
    ]


def store_deliveries(
    database_url: str, schema: str, moments: list[datetime], tag: str = "a"
) -> None:
    """Delivered events as the receiver stores them (the columns that must be filled)."""
    table = source_tables(schema).events["delivered"]
    query(
        database_url,
        table.insert().values(
            [
                {
                    "id": f"delivered-{tag}{n}",
                    "event": "delivered",
                    "email": f"user{n}@example.com",
                    "timestamp": moment,
                    "custom_args": {},
                    "raw": {"event": "delivered"},
                    "received_at": moment,
                }
                for n, moment in enumerate(moments)
            ]
        ),
    )


def test_completeness_shows_a_verdict_a_day_and_exits_1_while_events_are_missing(
    on_database: Invoke, database_url: str, account: FakeAccount
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    now = datetime.now(UTC)
    query(database_url, sources.update().values(created_at=now - timedelta(days=10)))
    today = now.date()
    # Two days ago is not settled yet; the three days before it are.
    day = datetime.combine(today - timedelta(days=3), datetime.min.time(), UTC)
    store_deliveries(database_url, "sendgrid", [day + timedelta(hours=h) for h in (1, 9, 17)])
    account.daily_stats[(today - timedelta(days=3)).isoformat()] = {"delivered": 5}
    account.daily_stats[(today - timedelta(days=4)).isoformat()] = {"opens": 0}

    before = on_database("completeness", "SendGrid")
    checked = on_database("completeness", "SendGrid", "--check", "--days", "2")
    shown = on_database("completeness", "SendGrid", "--json", "--days", "1")

    assert before.exit_code == 0, before.output
    assert "last check never" in before.output
    assert "no day reconciled yet" in before.output
    assert checked.exit_code == 1, checked.output
    lines = checked.output.splitlines()
    assert lines[0].startswith("source 'SendGrid': days in UTC, last check ")
    assert lines[1:] == [
        f"  {today - timedelta(days=3)}  2 events missing in delivered",
        f"  {today - timedelta(days=4)}  complete",
    ]
    assert shown.exit_code == 1
    [day_shown] = json.loads(shown.output)["days"]
    delivered = next(m for m in day_shown["metrics"] if m["metric"] == "delivered")
    assert (delivered["sendgrid_count"], delivered["stored_count"]) == (5, 3)

    # The two missing deliveries arrive: complete, exit 0.
    store_deliveries(
        database_url, "sendgrid", [day + timedelta(hours=20, minutes=m) for m in (1, 2)], "b"
    )
    complete = on_database("completeness", "SendGrid", "--check", "--days", "1")
    assert complete.exit_code == 0, complete.output
    assert complete.output.splitlines()[1:] == [f"  {today - timedelta(days=3)}  complete"]


def test_completeness_of_a_new_source_or_of_an_unknown_one(
    on_database: Invoke, account: FakeAccount
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0

    result = on_database("completeness", "SendGrid", "--check")
    unknown = on_database("completeness", "Nobody")

    # No webhook to watch and no event: nothing says events are meant to arrive.
    assert result.exit_code == 1, result.output
    assert "warning: not reconciled: the source has received no event" in result.output
    assert "no day reconciled yet" in result.output
    assert account.stats_queries == []
    assert unknown.exit_code == 1
    assert "no active source with id or name 'Nobody'" in unknown.stderr


def test_completeness_reports_a_refused_stats_read(
    on_database: Invoke, database_url: str, account: FakeAccount
) -> None:
    key = Signer().verification_key
    added = on_database(
        "sources", "add", "SendGrid", "--api-key", api_key(), "--verification-key", key
    )
    assert added.exit_code == 0, added.output
    query(database_url, sources.update().values(created_at=datetime.now(UTC) - timedelta(days=5)))
    account.forbidden.add("/v3/stats")

    result = on_database("completeness", "SendGrid", "--check")

    assert result.exit_code == 1
    assert (
        "warning: not reconciled: the API key may not read /v3/stats: it needs the stats.read "
        "scope" in result.output
    )


def test_sources_remove_unknown(on_database: Invoke) -> None:
    result = on_database("sources", "remove", "Nope", "--yes")
    assert result.exit_code == 1
    assert "no source with id or name 'Nope'" in result.stderr


def test_sources_show_prints_the_source_and_its_webhook_never_the_key(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    key = api_key()
    added = on_database("sources", "add", "SendGrid", "--api-key", key, "--interval", "90m")
    (source_id,) = query(database_url, sa.select(sources.c.id))

    by_name = on_database("sources", "show", "SendGrid")
    by_id = on_database("sources", "show", source_id.id)
    as_json = on_database("sources", "show", "SendGrid", "--json")

    assert by_name.exit_code == 0, by_name.output
    assert by_name.output == by_id.output
    assert f"id           {source_id.id}" in by_name.output
    assert "schema       sendgrid" in by_name.output
    assert webhook_url(by_name.output) == webhook_url(added.output)
    assert "interval     90m (5400 s)" in by_name.output
    assert "last event           never" in by_name.output
    assert "events stored        0" in by_name.output
    assert "last 24 h            no events" in by_name.output
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.output)
    assert shown["schema"] == "sendgrid"
    assert shown["webhook_url"] == webhook_url(added.output)
    assert shown["webhook"]["events_stored"] == 0
    assert shown["sync_interval_seconds"] == 5400
    assert "api_key" not in shown
    assert key not in by_name.output + as_json.output


def test_sources_show_names_an_unknown_or_removed_source(
    on_database: Invoke, sendgrid: respx.MockRouter
) -> None:
    unknown = on_database("sources", "show", "Nope")
    assert unknown.exit_code == 1
    assert "no active source with id or name 'Nope'" in unknown.stderr

    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    assert on_database("sources", "remove", "SendGrid", "--yes").exit_code == 0
    removed = on_database("sources", "show", "SendGrid")
    assert removed.exit_code == 1
    assert "source 'SendGrid' is removed" in removed.stderr


def test_sources_update_changes_only_what_is_given(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    signer = Signer()

    changed = on_database(
        "sources", "update", "SendGrid", "--interval", "1h", "--region", "eu",
        "--verification-key", signer.verification_key,
    )  # fmt: skip
    [row] = query(database_url, sa.select(sources))

    assert changed.exit_code == 0, changed.output
    assert "updated source 'SendGrid'" in changed.output
    assert "region       eu" in changed.output
    assert "signed       yes" in changed.output
    assert (row.sync_interval_seconds, row.region) == (3600, "eu")
    assert row.webhook_verification_key == signer.verification_key
    # No SendGrid call: the key was not given.
    assert sendgrid.calls.call_count == 1

    cleared = on_database(
        "sources", "update", "SendGrid", "--clear-verification-key", "--default-interval"
    )
    [row] = query(database_url, sa.select(sources))
    assert cleared.exit_code == 0, cleared.output
    assert "signed       no" in cleared.output
    assert (row.sync_interval_seconds, row.webhook_verification_key) == (None, None)
    assert row.region == "eu"


def test_sources_update_rotates_the_key_after_sendgrid_accepts_it(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    [before] = query(database_url, sa.select(sources))
    new_key = api_key()

    asked = on_database("sources", "update", "SendGrid", "--ask-api-key", input=f" {new_key} \n")
    [after] = query(database_url, sa.select(sources))

    assert asked.exit_code == 0, asked.output
    assert "New SendGrid API key" in asked.output
    assert new_key not in asked.output
    assert sendgrid.calls.last.request.headers["Authorization"] == f"Bearer {new_key}"
    assert after.api_key_fingerprint != before.api_key_fingerprint
    assert f"fingerprint {after.api_key_fingerprint}" in asked.output

    sendgrid.get("/v3/scopes").respond(401, json={"errors": [{"message": "unauthorized"}]})
    rejected = on_database("sources", "update", "SendGrid", "--api-key", api_key())
    assert rejected.exit_code == 1
    assert "SendGrid rejected this API key" in rejected.stderr
    assert query(database_url, sa.select(sources)) == [after]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to change: give at least one option"),
        (("--api-key", "SG.half key"), "--api-key: api_key holds whitespace inside it"),
        (("--interval", "10s"), "--interval: sync_interval must be between 1m and 365d"),
        (("--verification-key", "abc"), "--verification-key:"),
        (("--name", "Marketing"), "schema 'marketing' is already used by the source 'Marketing'"),
        (("--interval", "1h", "--default-interval"), "either --interval or --default-interval"),
    ],
)
def test_sources_update_refuses_what_patch_refuses(
    on_database: Invoke,
    database_url: str,
    sendgrid: respx.MockRouter,
    args: tuple[str, ...],
    message: str,
) -> None:
    for name in ("SendGrid", "Marketing"):
        assert on_database("sources", "add", name, "--api-key", api_key()).exit_code == 0
    before = query(database_url, sa.select(sources).order_by(sources.c.name))

    result = on_database("sources", "update", "SendGrid", *args)

    assert result.exit_code == 1
    assert message in result.stderr
    assert "SG.half key" not in result.output
    assert query(database_url, sa.select(sources).order_by(sources.c.name)) == before


def test_sources_update_renames_a_source_without_data(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0

    renamed = on_database("sources", "update", "SendGrid", "--name", "SendGrid EU")
    unknown = on_database("sources", "update", "SendGrid", "--interval", "1h")

    assert renamed.exit_code == 0, renamed.output
    assert "schema       sendgrid_eu" in renamed.output
    assert schema_exists(database_url, "sendgrid_eu")
    assert query(database_url, sa.text("SELECT count(*) FROM sendgrid_eu.activity")) == [(0,)]
    assert unknown.exit_code == 1
    assert "no active source with id or name 'SendGrid'" in unknown.stderr


# --- sync-now ------------------------------------------------------------------------------


def test_sync_now_syncs_in_the_foreground(
    on_database: Invoke, database_url: str, sendgrid: respx.MockRouter
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    account = FakeAccount(SENDGRID_TEST_URL)
    account.install(sendgrid)
    account.add_list("ca7a3796-e8a8-4029-9ccb-df8937940562", "Newsletter", 0)

    result = on_database("sync-now", "SendGrid")

    assert result.exit_code == 0, result.output
    assert re.search(r"sync \S+: succeeded", result.output), result.output
    lists = query(database_url, sa.text("SELECT name FROM sendgrid.lists"))
    assert [row.name for row in lists] == ["Newsletter"]


def test_sync_now_exits_non_zero_when_a_collection_fails(
    on_database: Invoke, sendgrid: respx.MockRouter
) -> None:
    assert on_database("sources", "add", "SendGrid", "--api-key", api_key()).exit_code == 0
    account = FakeAccount(SENDGRID_TEST_URL)
    account.install(sendgrid)
    account.forbidden = {"/v3/marketing/singlesends"}

    result = on_database("sync-now", "SendGrid")

    assert result.exit_code == 1
    assert re.search(r"sync \S+: partial", result.output), result.output


def test_sync_now_names_an_unknown_source(on_database: Invoke) -> None:
    result = on_database("sync-now", "Nope")
    assert result.exit_code == 1
    assert "no active source with id or name 'Nope'" in result.stderr


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["up"], ["ingest"], ["sync"], ["migrate"], ["sources", "list"], ["sync-now", "SendGrid"]],
)
@pytest.mark.parametrize(
    ("variable", "value"),
    [("SYNC_INTERVAL", "soon"), ("DATABASE_URL", "mysql://localhost/warehouse")],
)
def test_malformed_setting_stops_every_command(
    cli: Invoke, tmp_path: Path, command: list[str], variable: str, value: str
) -> None:
    result = cli(*command, **{variable: value})
    assert result.exit_code == 2
    assert f"invalid configuration: {variable}" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was created


# --- up, end to end ------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_up_runs_both_services_and_stops_them_on_sigterm(tmp_path: Path) -> None:
    ingest_port, sync_port = free_ports(2)
    ingest, sync = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{sync_port}"
    env = {k: v for k, v in os.environ.items() if k.upper() not in Settings.model_fields}
    env |= {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'warehouse.db'}",
        "INGEST_PORT": str(ingest_port),
        "SYNC_PORT": str(sync_port),
    }
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "sendgrid_source", "up"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and up.poll() is None:
            if answers(f"{ingest}/healthz") and answers(f"{sync}/healthz"):
                break
            time.sleep(0.1)
        output = log_path.read_text()
        assert up.poll() is None, output
        assert answers(f"{ingest}/healthz"), output
        assert answers(f"{sync}/healthz"), output

        started = re.search(r"started \(ingest pid (\d+), sync pid (\d+)\)", output)
        token = re.search(r"admin token\s+(\S+)\s+\(saved in (.+)\)", output)
        assert started is not None, output
        assert token is not None, output
        children = [int(started[1]), int(started[2])]
        assert Path(token[2]).read_text().strip() == token[1]
        authorized = httpx.get(f"{ingest}/sources", headers={"Authorization": f"Bearer {token[1]}"})
        refused = httpx.get(f"{ingest}/sources", headers={"Authorization": "Bearer wrong"})
        assert (authorized.status_code, authorized.json()) == (200, {"sources": []})
        assert refused.status_code == 401

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=30) == 0, log_path.read_text()
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert not answers(f"{ingest}/healthz")
        assert not answers(f"{sync}/healthz")
        assert log_path.read_text().count("Application shutdown complete") == 2
    finally:
        if up.poll() is None:
            # Children first, while `up` still holds them (their pids cannot be reused yet).
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            up.kill()
            up.wait()


def test_migrate_brings_a_0004_database_to_backfills(
    cli: Invoke,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sendgrid: respx.MockRouter,
) -> None:
    migrated_with_a_source(cli, empty_database_url, monkeypatch)
    postgres = empty_database_url.startswith("postgresql")
    # What revision 0004 and source schema version 5 had: no backfills, no repair setting,
    # no counts kept from before a repair.
    control = _control(empty_database_url, "sources")
    for column in ("completeness_repair", "backfill_days"):
        query(empty_database_url, sa.text(f"ALTER TABLE {control} DROP COLUMN {column}"))
    query(empty_database_url, sa.text(f"DROP TABLE {_control(empty_database_url, 'backfills')}"))
    for column in ("stored_before_repair", "repaired_at"):
        query(
            empty_database_url, sa.text(f"ALTER TABLE sendgrid.completeness DROP COLUMN {column}")
        )
    # Event tables without `origin` (the view over them goes first), one event stored.
    query(empty_database_url, sa.text("DROP VIEW sendgrid.activity"))
    # Version 5's `received_at` indexes, without `origin`.
    for table in EVENT_TABLES:
        query(empty_database_url, sa.text(f"DROP INDEX sendgrid.ix_{table}_received_at"))
        query(empty_database_url, sa.text(f"ALTER TABLE sendgrid.{table} DROP COLUMN origin"))
        # The schema qualifies the table on PostgreSQL, the index on SQLite.
        index, on = (
            (f"ix_{table}_received_at", f"sendgrid.{table}")
            if postgres
            else (f"sendgrid.ix_{table}_received_at", table)
        )
        query(empty_database_url, sa.text(f"CREATE INDEX {index} ON {on} (received_at)"))
    query(
        empty_database_url,
        sa.text(
            "INSERT INTO sendgrid.delivered (id, event, email, timestamp, custom_args, raw, "
            "received_at) VALUES ('e1', 'delivered', 'a@example.com', '2026-11-30 00:00:00+00',"
            " '{}', '{}', '2026-11-30 00:00:01+00')"
        ),
    )
    claim_revision(empty_database_url, "0004", 5)

    result = cli("migrate")

    assert result.exit_code == 0, result.output
    assert "upgraded from 0004 to 0005" in result.output
    assert "source schemas: upgraded sendgrid" in result.output
    rows = query(
        empty_database_url,
        sa.select(sources.c.completeness_repair, sources.c.backfill_days, sources.c.schema_version),
    )
    assert [tuple(row) for row in rows] == [(False, None, SOURCE_SCHEMA_VERSION)]
    assert query(empty_database_url, sa.select(sa.func.count()).select_from(backfills)) == [(0,)]
    assert query(
        empty_database_url,
        sa.text(
            "SELECT count(stored_before_repair), count(repaired_at) FROM sendgrid.completeness"
        ),
    ) == [(0, 0)]
    # The event stored before came by the webhook; the view shows where each came from.
    assert query(empty_database_url, sa.text("SELECT id, origin FROM sendgrid.activity")) == [
        ("e1", "webhook")
    ]
    # What the webhook received lately is counted from the index alone.
    indexes = index_columns(empty_database_url, "sendgrid", "delivered")
    assert indexes["ix_delivered_received_at"] == ["received_at", "origin"]
