"""At most one backfill per source at a time, across replicas, and an interrupted one resumed
from its progress row rather than started over.

The mechanism is the sync's (`run_claims`), with a lock of its own: PostgreSQL holds a
session-level advisory lock for the whole backfill, SQLite claims with one statement that
only succeeds when no live backfill exists and treats a silent heartbeat as a dead process.
A backfill whose process stopped is `interrupted`; the next claim of its source takes it over
where its `reached` says, whatever range the new request named.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import utcnow
from shared.db import is_sqlite
from shared.tables import backfills
from sync_service.run_claims import STALE_AFTER
from sync_service.source_locks import advisory_key, lock_free, try_lock, unlock

BackfillTrigger = Literal["manual", "initial", "repair"]

# What a backfill whose process stopped says, until it is resumed.
INTERRUPTED = "interrupted: the process stopped; the next backfill of this source resumes it"


def _key(source_id: str) -> int:
    return advisory_key(source_id, "backfill")


@dataclass
class BackfillClaim:
    id: str
    source_id: str
    trigger: str
    since: datetime
    until: datetime
    reached: datetime
    # True when this claim took over an interrupted backfill instead of starting one.
    resumed: bool
    lock_connection: AsyncConnection | None = None

    async def release(self) -> None:
        if self.lock_connection is None:
            return
        connection, self.lock_connection = self.lock_connection, None
        await unlock(connection, _key(self.source_id))


async def claim_backfill(
    engine: AsyncEngine,
    source_id: str,
    *,
    trigger: BackfillTrigger,
    since: datetime,
    until: datetime,
    worker: str,
    repair_days: list[str] | None = None,
) -> BackfillClaim | None:
    """Resume the source's interrupted backfill, or start one over [since, until); None while
    another backfill of the source is alive."""
    if is_sqlite(engine):
        async with engine.begin() as connection:
            # The UPDATE takes SQLite's write lock first, so nothing writes between the
            # checks and the claim below.
            await connection.execute(_interrupt_stale(source_id, utcnow()))
            alive = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(backfills)
                .where(backfills.c.source_id == source_id, backfills.c.status == "running")
            )
            if alive:
                return None
            return await _take(connection, source_id, trigger, since, until, worker, repair_days)
    lock = await try_lock(engine, _key(source_id))
    if lock is None:
        return None
    try:
        async with engine.begin() as connection:
            # Holding the lock means no live backfill exists: a `running` row was left by a
            # process that died, and is resumed like an interrupted one.
            claim = await _take(connection, source_id, trigger, since, until, worker, repair_days)
    except BaseException:
        await unlock(lock, _key(source_id))
        raise
    claim.lock_connection = lock
    return claim


async def _take(
    connection: AsyncConnection,
    source_id: str,
    trigger: BackfillTrigger,
    since: datetime,
    until: datetime,
    worker: str,
    repair_days: list[str] | None,
) -> BackfillClaim:
    now = utcnow()
    left = (
        await connection.execute(
            sa.select(backfills)
            .where(
                backfills.c.source_id == source_id,
                backfills.c.status.in_(("running", "interrupted")),
            )
            .order_by(backfills.c.started_at)
            .limit(1)
        )
    ).first()
    if left is not None:
        await connection.execute(
            backfills.update()
            .where(backfills.c.id == left.id)
            .values(status="running", worker=worker, heartbeat_at=now, error=None)
        )
        return BackfillClaim(
            left.id, source_id, left.trigger, left.since, left.until, left.reached, True
        )
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source_id": source_id,
        "trigger": trigger,
        "status": "running",
        "since": since,
        "until": until,
        "reached": since,
        "repair_days": repair_days,
        "started_at": now,
        "heartbeat_at": now,
        "worker": worker,
    }
    await connection.execute(backfills.insert().values(values))
    return BackfillClaim(values["id"], source_id, trigger, since, until, since, False)


def _interrupt_stale(source_id: str | None, now: datetime) -> sa.Update:
    query = backfills.update().where(
        backfills.c.status == "running", backfills.c.heartbeat_at < now - STALE_AFTER
    )
    if source_id is not None:
        query = query.where(backfills.c.source_id == source_id)
    return query.values(status="interrupted", error=INTERRUPTED)


async def interrupt_dead_backfills(engine: AsyncEngine) -> list[str]:
    """Mark `running` backfills whose process died as interrupted; returns their sources.

    PostgreSQL: a backfill is alive exactly while its source's lock is held. SQLite: its
    heartbeat has been silent for STALE_AFTER.
    """
    now = utcnow()
    if is_sqlite(engine):
        async with engine.begin() as connection:
            await connection.execute(_interrupt_stale(None, now))
    else:
        async with engine.connect() as connection:
            running = (
                await connection.scalars(
                    sa.select(backfills.c.source_id)
                    .where(backfills.c.status == "running")
                    .distinct()
                )
            ).all()
        for source_id in running:
            async with engine.begin() as connection:
                await connection.execute(
                    backfills.update()
                    .where(
                        backfills.c.source_id == source_id,
                        backfills.c.status == "running",
                        lock_free(_key(source_id)),
                    )
                    .values(status="interrupted", error=INTERRUPTED)
                )
    async with engine.connect() as connection:
        return list(
            (
                await connection.scalars(
                    sa.select(backfills.c.source_id)
                    .where(backfills.c.status == "interrupted")
                    .distinct()
                )
            ).all()
        )
