"""A backfill's progress row (`backfills`): advanced after each listing window is written,
finished once, and read back for the API, the CLI and the run ledger."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.tables import backfills
from sync_service.backfill_claims import INTERRUPTED

BackfillStatus = Literal["running", "interrupted", "succeeded", "partial", "failed"]


@dataclass
class WindowCounts:
    """What one listing window came to (added to the row's totals)."""

    messages_listed: int = 0
    messages_read: int = 0
    messages_missing: int = 0
    messages_truncated: int = 0
    events_stored: int = 0
    duplicates: int = 0
    rejected: int = 0


COUNT_NAMES = [f.name for f in fields(WindowCounts)]


@dataclass
class BackfillRecord:
    id: str
    source_id: str
    trigger: str
    status: str
    since: datetime
    until: datetime
    reached: datetime
    messages_listed: int
    messages_read: int
    messages_missing: int
    messages_truncated: int
    events_stored: int
    duplicates: int
    rejected: int
    shortfall: str | None
    repair_days: list[str] | None
    started_at: datetime
    finished_at: datetime | None
    error: str | None

    @property
    def progress(self) -> float:
        """The share of the range whose messages are all read (0 to 1)."""
        span = (self.until - self.since).total_seconds()
        return 1.0 if span <= 0 else min(1.0, (self.reached - self.since).total_seconds() / span)


_RECORD_FIELDS = [f.name for f in fields(BackfillRecord)]


async def advance(
    engine: AsyncEngine, backfill_id: str, reached: datetime, counts: WindowCounts
) -> None:
    """Record a written window: the range before `reached` is done, and its counts."""
    added = {name: getattr(backfills.c, name) + getattr(counts, name) for name in COUNT_NAMES}
    async with engine.begin() as connection:
        await connection.execute(
            backfills.update()
            .where(backfills.c.id == backfill_id)
            .values(reached=reached, heartbeat_at=utcnow(), **added)
        )


async def beat(engine: AsyncEngine, backfill_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            backfills.update().where(backfills.c.id == backfill_id).values(heartbeat_at=utcnow())
        )


async def finish(
    engine: AsyncEngine,
    backfill_id: str,
    status: BackfillStatus,
    *,
    error: str | None = None,
    shortfall: str | None = None,
) -> None:
    now = utcnow()
    values: dict[str, object] = {"status": status, "error": error, "heartbeat_at": now}
    if status == "interrupted":
        values["error"] = error or INTERRUPTED
    else:
        values["finished_at"] = now
        values["shortfall"] = shortfall
    async with engine.begin() as connection:
        await connection.execute(
            backfills.update().where(backfills.c.id == backfill_id).values(**values)
        )


def _record(row: sa.Row[tuple[object, ...]]) -> BackfillRecord:
    return BackfillRecord(**{name: row._mapping[name] for name in _RECORD_FIELDS})


async def get_backfill(engine: AsyncEngine, backfill_id: str) -> BackfillRecord | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(sa.select(backfills).where(backfills.c.id == backfill_id))
        ).first()
    return None if row is None else _record(row)


async def list_backfills(
    engine: AsyncEngine, source_id: str, limit: int = 50
) -> list[BackfillRecord]:
    """The source's backfills, newest first."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(backfills)
            .where(backfills.c.source_id == source_id)
            .order_by(backfills.c.started_at.desc(), backfills.c.id)
            .limit(limit)
        )
        return [_record(row) for row in rows]


async def repaired_days(engine: AsyncEngine, source_id: str) -> set[str]:
    """Days a finished repair backfill of the source has already covered: a day still short
    after its repair is not repaired again (Email Logs had nothing more to give)."""
    async with engine.connect() as connection:
        rows = await connection.scalars(
            sa.select(backfills.c.repair_days).where(
                backfills.c.source_id == source_id,
                backfills.c.trigger == "repair",
                backfills.c.status.in_(("succeeded", "partial", "failed")),
            )
        )
        return {day for days in rows if days for day in days}
