"""One run per source at a time, across replicas, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.errors import Conflict
from shared.source_rows import Source
from shared.tables import sync_runs
from sync_service.ledger import finish_run, list_runs
from sync_service.run_claims import INTERRUPTED, RunClaim, claim_run
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.sync.fakes import FakeTime


async def test_two_replicas_triggering_at_once_start_one_run(
    source: Source, replica_engines: list[AsyncEngine]
) -> None:
    first, second = replica_engines

    claims = await asyncio.gather(
        claim_run(first, source.id, "scheduled", worker="replica-1"),
        claim_run(second, source.id, "manual", worker="replica-2"),
    )

    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    runs = await list_runs(first, source.id)
    assert [run.status for run in runs] == ["running"]
    assert runs[0].id == won[0].run_id

    await finish_run(first, won[0].run_id, "succeeded")
    await won[0].release()
    again = await claim_run(second, source.id, "manual", worker="replica-2")
    assert again is not None
    await again.release()


async def test_many_concurrent_triggers_still_start_one_run(
    source: Source, replica_engines: list[AsyncEngine]
) -> None:
    attempts = [
        claim_run(replica_engines[i % 2], source.id, "manual", worker=f"replica-{i % 2}")
        for i in range(8)
    ]

    claims = await asyncio.gather(*attempts)

    won: list[RunClaim] = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    await won[0].release()


async def test_a_run_left_by_a_dead_process_is_taken_over(
    source: Source, replica_engines: list[AsyncEngine]
) -> None:
    engine = replica_engines[0]
    long_ago = utcnow() - timedelta(hours=1)
    async with engine.begin() as connection:
        await connection.execute(
            sync_runs.insert().values(
                id="dead-run",
                source_id=source.id,
                trigger="scheduled",
                status="running",
                started_at=long_ago,
                heartbeat_at=long_ago,
                worker="gone:1",
            )
        )

    claim = await claim_run(engine, source.id, "manual", worker="replica-1")

    assert claim is not None
    await claim.release()
    async with engine.connect() as connection:
        dead = (
            await connection.execute(sa.select(sync_runs).where(sync_runs.c.id == "dead-run"))
        ).one()
    assert dead.status == "failed"
    assert dead.error == INTERRUPTED


async def test_a_manual_trigger_while_running_is_refused(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    fake_time: FakeTime,
) -> None:
    account.unavailable = True
    fake_time.gate = asyncio.Event()
    run_id = await sync_service.start(source.id, "manual")
    await fake_time.held.wait()  # the run is now waiting to retry SendGrid

    with pytest.raises(Conflict, match="already running"):
        await sync_service.start(source.id, "manual")
    assert await sync_service.run(source.id, "scheduled") is None

    account.unavailable = False
    fake_time.gate.set()
    await sync_service.wait_for_background()
    runs = await list_runs(sync_deps.engine, source.id)
    assert [(run.id, run.status) for run in runs] == [(run_id, "succeeded")]
