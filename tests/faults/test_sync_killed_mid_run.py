"""Scenario 3: the sync process SIGKILLed in the middle of a run.

Promise: the run does not stay `running` for ever: once another sync process can take the
source over, the dead run is shown `failed` with the reason; the partial run marked nothing
deleted (a soft delete follows only a complete listing); and the next run completes.

On PostgreSQL the takeover is the session advisory lock of `sync_service.run_claims`: the
killed process's connection closes, the lock goes with it, and the next claim marks any
`running` row of the source as interrupted. (The heartbeat's STALE_AFTER is SQLite's
mechanism; on PostgreSQL no threshold has to pass.)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from shared.clock import utcnow
from shared.collections import NAMES
from shared.db import create_engine
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings
from shared.tables import sync_runs
from sync_service.app import create_app as create_sync_app
from sync_service.run_claims import INTERRUPTED
from sync_service.scheduling import SyncScheduler
from tests.conftest import ADMIN_TOKEN, SENDGRID_TEST_URL, api_key
from tests.fake_sendgrid.contacts import Contact
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.faults.conftest import (
    Process,
    fetch,
    free_port,
    sendgrid_source,
    service_env,
    wait_until_up,
)

pytestmark = pytest.mark.slow

CONTACTS = 40_000
LISTS = 1500  # two pages of 1000
# Killed once the second run has rewritten this many contacts (of CONTACTS).
KILL_AFTER_CONTACTS = 10_000
TABLES = NAMES  # every collection's table


async def runs(settings: Settings, source_id: str) -> list[dict[str, Any]]:
    rows = await fetch(
        settings.DATABASE_URL,
        "SELECT id, status, error, started_at, finished_at FROM sendgrid_source.sync_runs "
        "WHERE source_id = $1 ORDER BY started_at",
        source_id,
    )
    return [dict(row) for row in rows]


async def wait_for_run(
    settings: Settings, source_id: str, run_id: str | None, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll the ledger (at most 120 s) until the run (the latest if None) satisfies `done`."""
    for _ in range(1200):
        found = await runs(settings, source_id)
        run = next((r for r in found if r["id"] == run_id), None) if run_id else None
        if run_id is None and found:
            run = found[-1]
        if run is not None and done(run):
            return run
        await asyncio.sleep(0.1)
    pytest.fail(f"run {run_id} never got there: {await runs(settings, source_id)}")


async def edit_every_contact(fake_url: str) -> None:
    async with httpx.AsyncClient(base_url=fake_url) as client:
        response = await client.post("/fake/contacts/edit", params={"share": 1})
        response.raise_for_status()


async def table_state(settings: Settings, schema: str, table: str) -> dict[str, int]:
    [row] = await fetch(
        settings.DATABASE_URL,
        f"SELECT count(*) AS rows, count(deleted_at) AS deleted, "
        f"count(DISTINCT synced_at) AS syncs FROM {schema}.{table}",
    )
    return dict(row)


async def test_a_run_killed_midway_is_failed_by_the_next_one_which_completes(
    settings: Settings,
    tmp_path: Path,
    processes: Callable[[list[str], dict[str, str], Path], Process],
) -> None:
    fake_port, sync_port = free_port(), free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    sync_url = f"http://127.0.0.1:{sync_port}"
    fake = processes(
        [sys.executable, "-m", "tests.fake_sendgrid.server", "--contacts", str(CONTACTS),
         "--lists", str(LISTS), "--port", str(fake_port)],
        service_env(settings), tmp_path / "fake.log",
    )  # fmt: skip
    fake.start()
    await wait_until_up(fake, f"{fake_url}/v3/scopes")

    against_fake = settings.model_copy(update={"SENDGRID_API_URL": fake_url})
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with httpx.AsyncClient() as http:
            source, _ = await SourceRegistry(engine, against_fake, http).create(
                SourceCreate(name="Killed Sync", api_key="SG.faults.key")
            )
    finally:
        await engine.dispose()
    schema = source.schema_name
    env = service_env(settings, SYNC_PORT=str(sync_port), SENDGRID_API_URL=fake_url)
    first = processes(sendgrid_source("sync"), env, tmp_path / "sync-1.log")
    second = processes(sendgrid_source("sync"), env, tmp_path / "sync-2.log")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async with asyncio.timeout(170), httpx.AsyncClient(base_url=sync_url, headers=admin) as api:
        # Run 1: the scheduler's initial sync, complete. Its rows are what a wrong soft
        # delete by the partial run would hit.
        first.start()
        initial = await wait_for_run(settings, source.id, None, lambda r: r["status"] != "running")
        assert initial["status"] == "succeeded", (initial, first.output())
        assert (await table_state(settings, schema, "recipients"))["rows"] == CONTACTS

        # Run 2: every contact edited at SendGrid (a sync writes only what changed), then
        # started through the API and killed while it rewrites the contacts.
        await edit_every_contact(fake_url)
        started = await api.post(f"/sources/{source.id}/syncs")
        assert started.status_code == 202, started.text
        killed_id = started.json()["run_id"]
        for _ in range(1200):
            [row] = await fetch(
                settings.DATABASE_URL,
                f"SELECT count(*) AS n FROM {schema}.recipients WHERE synced_at > $1",
                initial["finished_at"],
            )
            if row["n"] >= KILL_AFTER_CONTACTS:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"run 2 never rewrote {KILL_AFTER_CONTACTS} contacts:\n{first.output()}")
        assert await first.kill() == -9
        [killed] = [r for r in await runs(settings, source.id) if r["id"] == killed_id]
        assert killed["status"] == "running", "the run ended before the kill: make it longer"
        recipients = await table_state(settings, schema, "recipients")
        # Partial: some contacts carry run 2's synced_at, the rest still run 1's.
        assert recipients["rows"] == CONTACTS
        assert recipients["syncs"] == 2
        [rewritten] = await fetch(
            settings.DATABASE_URL,
            f"SELECT count(*) AS n FROM {schema}.recipients WHERE synced_at > $1",
            initial["finished_at"],
        )
        for table in TABLES:
            assert (await table_state(settings, schema, table))["deleted"] == 0, table

        # A new sync process: the dead run does not block the source (no 409) ...
        second.start()
        await wait_until_up(second, f"{sync_url}/readyz")
        listed_before = (await api.get(f"/sources/{source.id}/syncs")).json()["runs"]
        await edit_every_contact(fake_url)  # so the complete run rewrites every contact
        started = await api.post(f"/sources/{source.id}/syncs")
        assert started.status_code == 202, started.text
        next_id = started.json()["run_id"]
        await wait_for_run(settings, source.id, next_id, lambda r: r["status"] != "running")

        # ... the ledger shows the killed run failed, with the reason, and the next complete.
        listed = {
            run["id"]: run for run in (await api.get(f"/sources/{source.id}/syncs")).json()["runs"]
        }
    assert listed[killed_id]["status"] == "failed"
    assert listed[killed_id]["error"] == INTERRUPTED
    assert listed[killed_id]["finished_at"] is not None
    assert listed[next_id]["status"] == "succeeded", listed[next_id]
    assert {
        c["collection"]: (c["status"], c["rows_deleted"]) for c in listed[next_id]["collections"]
    } == {table: ("succeeded", 0) for table in TABLES}
    upserted = {c["collection"]: c["rows_upserted"] for c in listed[next_id]["collections"]}
    assert upserted["recipients"] == CONTACTS
    assert upserted["lists"] == LISTS
    for table in TABLES:
        state = await table_state(settings, schema, table)
        assert state["deleted"] == 0, table
        # Contacts: all rewritten by the complete run. The rest did not change after run 1,
        # so neither later run wrote them.
        assert state["syncs"] == 1, table
    assert (await table_state(settings, schema, "recipients"))["rows"] == CONTACTS

    killed_listed_before = next(r for r in listed_before if r["id"] == killed_id)
    print(
        f"\nsync killed: run 1 {initial['status']} ({CONTACTS} contacts, {LISTS} lists); run 2 "
        f"SIGKILLed after rewriting {rewritten['n']} of {CONTACTS} contacts; 0 rows marked "
        f"deleted; restarted, before the next run the ledger listed run 2 as "
        f"{killed_listed_before['status']!r}; once the next run claimed the source, run 2 "
        f"{listed[killed_id]['status']!r} ({listed[killed_id]['error']}), run 3 "
        f"{listed[next_id]['status']!r} with {upserted}"
    )


async def test_a_restarted_sync_service_fails_a_dead_run_and_resyncs_without_being_asked(
    settings: Settings, sendgrid: respx.MockRouter
) -> None:
    account = FakeAccount(SENDGRID_TEST_URL)
    account.install(sendgrid)
    account.add_list("ca7a3796-e8a8-4029-9ccb-df8937940562", "Newsletter", 1)
    account.contacts = [Contact("47d23ab0-d895-4359-a0d1-ffc7a6fc7e70", "a@example.com", "A")]
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with httpx.AsyncClient() as http:
            source, _ = await SourceRegistry(engine, settings, http).create(
                SourceCreate(name="Dead Run", api_key=api_key())
            )
        # What a SIGKILLed process leaves: a `running` row, its lock gone with its connection.
        a_minute_ago = utcnow() - timedelta(minutes=1)
        async with engine.begin() as connection:
            await connection.execute(
                sync_runs.insert().values(
                    id="killed-run", source_id=source.id, trigger="manual", status="running",
                    started_at=a_minute_ago, heartbeat_at=a_minute_ago, worker="gone:1",
                )
            )  # fmt: skip
    finally:
        await engine.dispose()

    app = create_sync_app(settings)
    async with asyncio.timeout(60), app.router.lifespan_context(app):
        scheduler: SyncScheduler = app.state.scheduler
        for _ in range(200):  # the reconcile that runs at start-up has scheduled the source
            if scheduler.next_run_time(source.id) is not None:
                break
            await asyncio.sleep(0.05)
        killed = {run["id"]: run for run in await runs(settings, source.id)}["killed-run"]
        assert (killed["status"], killed["error"]) == ("failed", INTERRUPTED)
        latest = await wait_for_run(settings, source.id, None, lambda r: r["id"] != "killed-run")
        finished = await wait_for_run(
            settings, source.id, latest["id"], lambda r: r["status"] != "running"
        )
        assert finished["status"] == "succeeded"
