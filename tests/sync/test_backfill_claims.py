"""One backfill per source at a time, across replicas, apart from its syncs; an interrupted
one resumed where it stopped. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.source_rows import Source
from shared.tables import backfills
from sync_service.backfill_claims import (
    INTERRUPTED,
    BackfillClaim,
    claim_backfill,
    interrupt_dead_backfills,
)
from sync_service.backfill_ledger import WindowCounts, advance, finish, get_backfill
from sync_service.run_claims import STALE_AFTER, claim_run

SINCE = utcnow().replace(microsecond=0) - timedelta(days=30)
UNTIL = SINCE + timedelta(days=30)


async def _claim(engine: AsyncEngine, source: Source, worker: str) -> BackfillClaim | None:
    return await claim_backfill(
        engine, source.id, trigger="manual", since=SINCE, until=UNTIL, worker=worker
    )


async def _die(engine: AsyncEngine, claim: BackfillClaim) -> None:
    """What a killed process leaves: its row `running`, its lock gone, its heartbeat old."""
    connection = claim.lock_connection
    claim.lock_connection = None
    if connection is not None:
        # The session ends (not back to the pool): PostgreSQL frees the advisory lock.
        await connection.invalidate()
        await connection.close()
    async with engine.begin() as transaction:
        await transaction.execute(
            backfills.update()
            .where(backfills.c.id == claim.id)
            .values(heartbeat_at=utcnow() - STALE_AFTER - timedelta(seconds=1))
        )


async def test_two_replicas_claiming_at_once_start_one_backfill(
    source: Source, replica_engines: list[AsyncEngine]
) -> None:
    first, second = replica_engines

    claims = await asyncio.gather(_claim(first, source, "r1"), _claim(second, source, "r2"))

    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    async with first.connect() as connection:
        rows = (await connection.execute(sa.select(backfills.c.status))).all()
    assert [row.status for row in rows] == ["running"]
    await finish(first, won[0].id, "succeeded")
    await won[0].release()
    again = await _claim(second, source, "r2")
    assert again is not None
    assert not again.resumed
    assert again.id != won[0].id
    await again.release()


async def test_a_backfill_and_a_sync_of_one_source_run_side_by_side(
    source: Source, replica_engines: list[AsyncEngine]
) -> None:
    first, second = replica_engines
    backfill = await _claim(first, source, "r1")
    sync = await claim_run(second, source.id, "manual", worker="r2")

    assert backfill is not None
    assert sync is not None
    await backfill.release()
    await sync.release()


async def test_an_interrupted_backfill_is_resumed_where_it_stopped(
    source: Source, replica_engines: list[AsyncEngine]
) -> None:
    first, second = replica_engines
    claim = await _claim(first, source, "r1")
    assert claim is not None
    halfway = SINCE + timedelta(days=12)
    await advance(first, claim.id, halfway, WindowCounts(messages_listed=7, events_stored=20))
    await _die(first, claim)

    assert await interrupt_dead_backfills(second) == [source.id]
    row = await get_backfill(second, claim.id)
    assert row is not None
    assert (row.status, row.error) == ("interrupted", INTERRUPTED)

    # Another range asked for: the interrupted backfill is taken over instead, as it was.
    resumed = await claim_backfill(
        second,
        source.id,
        trigger="manual",
        since=UNTIL - timedelta(days=1),
        until=UNTIL,
        worker="r2",
    )

    assert resumed is not None
    assert (resumed.id, resumed.resumed) == (claim.id, True)
    assert (resumed.since, resumed.until, resumed.reached) == (SINCE, UNTIL, halfway)
    row = await get_backfill(second, claim.id)
    assert row is not None
    assert (row.status, row.error, row.events_stored, row.messages_listed) == (
        "running",
        None,
        20,
        7,
    )
    # While it runs, nobody else takes it.
    assert await _claim(first, source, "r1") is None
    await resumed.release()


async def test_a_finished_backfill_is_not_resumed(
    source: Source, replica_engines: list[AsyncEngine]
) -> None:
    first, _ = replica_engines
    claim = await _claim(first, source, "r1")
    assert claim is not None
    await finish(first, claim.id, "failed", error="SendGrid refused")
    await claim.release()

    assert await interrupt_dead_backfills(first) == []
    fresh = await _claim(first, source, "r1")
    assert fresh is not None
    assert not fresh.resumed
    assert fresh.id != claim.id
    await fresh.release()
