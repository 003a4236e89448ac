"""Making sure one source is synced by one process at a time, across replicas.

PostgreSQL: a session-level advisory lock per source, held on a dedicated connection for the
whole run; if the process dies, the connection closes and the lock goes with it. SQLite has
one writer at a time anyway, so a single INSERT that only succeeds when no live run exists is
the claim; a run whose heartbeat stopped no longer blocks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import utcnow
from shared.db import is_sqlite
from shared.tables import sync_runs
from sync_service.ledger import INTERRUPTED, Trigger
from sync_service.source_locks import advisory_key, lock_free, try_lock, unlock

__all__ = ["INTERRUPTED", "RunClaim", "claim_run", "fail_dead_runs"]

# Heartbeats are written every background.HEARTBEAT_SECONDS; a run silent for STALE_AFTER
# is dead.
STALE_AFTER = timedelta(minutes=5)


@dataclass
class RunClaim:
    run_id: str
    source_id: str
    trigger: Trigger
    started_at: datetime
    lock_connection: AsyncConnection | None = None

    async def release(self) -> None:
        if self.lock_connection is None:
            return
        connection, self.lock_connection = self.lock_connection, None
        await unlock(connection, advisory_key(self.source_id))


def _run_values(
    run_id: str, source_id: str, trigger: Trigger, now: datetime, worker: str
) -> dict[str, object]:
    return {
        "id": run_id,
        "source_id": source_id,
        "trigger": trigger,
        "status": "running",
        "started_at": now,
        "heartbeat_at": now,
        "worker": worker,
    }


async def claim_run(
    engine: AsyncEngine, source_id: str, trigger: Trigger, *, worker: str
) -> RunClaim | None:
    """Start a run of the source, or return None when another run of it is in progress."""
    if is_sqlite(engine):
        return await _claim_sqlite(engine, source_id, trigger, worker)
    return await _claim_postgres(engine, source_id, trigger, worker)


async def _claim_postgres(
    engine: AsyncEngine, source_id: str, trigger: Trigger, worker: str
) -> RunClaim | None:
    connection = await try_lock(engine, advisory_key(source_id))
    if connection is None:
        return None
    claim = RunClaim(str(uuid.uuid4()), source_id, trigger, utcnow(), connection)
    try:
        async with engine.begin() as transaction:
            # Holding the lock means no live run exists; any `running` row is left by a
            # process that died.
            await transaction.execute(
                sync_runs.update()
                .where(sync_runs.c.source_id == source_id, sync_runs.c.status == "running")
                .values(status="failed", finished_at=claim.started_at, error=INTERRUPTED)
            )
            await transaction.execute(
                sync_runs.insert().values(
                    _run_values(claim.run_id, source_id, trigger, claim.started_at, worker)
                )
            )
    except BaseException:
        await claim.release()
        raise
    return claim


async def _claim_sqlite(
    engine: AsyncEngine, source_id: str, trigger: Trigger, worker: str
) -> RunClaim | None:
    now = utcnow()
    run_id = str(uuid.uuid4())
    values = _run_values(run_id, source_id, trigger, now, worker)
    live = sa.exists().where(sync_runs.c.source_id == source_id, sync_runs.c.status == "running")
    async with engine.begin() as connection:
        # The UPDATE takes SQLite's write lock first, so the check and the insert below run
        # with no other writer in between.
        await connection.execute(
            sync_runs.update()
            .where(
                sync_runs.c.source_id == source_id,
                sync_runs.c.status == "running",
                sync_runs.c.heartbeat_at < now - STALE_AFTER,
            )
            .values(status="failed", finished_at=now, error=INTERRUPTED)
        )
        literals = [
            sa.literal(values[column.name], type_=column.type)
            if column.name in values
            else sa.null()
            for column in sync_runs.columns
        ]
        result = await connection.execute(
            sync_runs.insert().from_select(
                [column.name for column in sync_runs.columns], sa.select(*literals).where(~live)
            )
        )
    if result.rowcount != 1:
        return None
    return RunClaim(run_id, source_id, trigger, now)


async def fail_dead_runs(engine: AsyncEngine) -> int:
    """Mark `running` runs whose process died as failed; returns how many.

    PostgreSQL: a run is alive exactly while its source's lock is held, and the check and
    the update are one statement, so a run claimed meanwhile is never touched. SQLite: the
    heartbeat has been silent for STALE_AFTER.
    """
    now = utcnow()
    async with engine.connect() as connection:
        source_ids = (
            await connection.scalars(
                sa.select(sync_runs.c.source_id).where(sync_runs.c.status == "running").distinct()
            )
        ).all()
    failed = 0
    for source_id in source_ids:
        dead = (
            sync_runs.c.heartbeat_at < now - STALE_AFTER
            if is_sqlite(engine)
            else lock_free(advisory_key(source_id))
        )
        async with engine.begin() as connection:
            result = await connection.execute(
                sync_runs.update()
                .where(sync_runs.c.source_id == source_id, sync_runs.c.status == "running", dead)
                .values(status="failed", finished_at=now, error=INTERRUPTED)
            )
        failed += int(result.rowcount or 0)
    return failed
