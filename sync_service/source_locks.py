"""PostgreSQL session-level advisory locks, one per source and purpose.

A lock is held on a dedicated connection for as long as the work runs; if the process dies,
the connection closes and the lock goes with it, so "the lock is free" means "no live
process is doing this". Syncs and backfills take different locks: a backfill reads Email
Logs for hours and must not hold back the source's syncs.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Purpose = Literal["sync", "backfill"]


def advisory_key(source_id: str, purpose: Purpose = "sync") -> int:
    """A stable signed 64-bit lock key for a source's purpose, namespaced to this product."""
    digest = hashlib.sha256(f"sendgrid-source {purpose}:{source_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def try_lock(engine: AsyncEngine, key: int) -> AsyncConnection | None:
    """The connection now holding the lock, or None when another session holds it."""
    connection = await engine.connect()
    try:
        # Autocommit: the lock belongs to the session, and the session must not sit idle in a
        # transaction for the hours a large export or a backfill can take.
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        locked = await connection.scalar(sa.select(sa.func.pg_try_advisory_lock(key)))
    except BaseException:
        await connection.close()
        raise
    if not locked:
        await connection.close()
        return None
    return connection


async def unlock(connection: AsyncConnection, key: int) -> None:
    try:
        await connection.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
    finally:
        # Closing the session releases the lock even if the unlock above failed.
        await connection.close()


def lock_free(key: int) -> sa.TextClause:
    """True when no session holds the lock: no process is doing what it guards.

    pg_locks shows a bigint advisory key as classid (high 32 bits), objid (low), objsubid 1.
    """
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return sa.text(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND database = "
        "(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
        "AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid) AND objsubid = 1 "
        "AND granted)"
    ).bindparams(high=str(unsigned >> 32), low=str(unsigned & 0xFFFFFFFF))
