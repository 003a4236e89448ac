"""The run ledger: one `sync_runs` row per run and one `sync_run_collections` row per table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.tables import sync_run_collections, sync_runs

Trigger = Literal["initial", "scheduled", "manual"]
# skipped: not selected for the source (shared.collections); its table is left as it is.
CollectionStatus = Literal["succeeded", "empty", "forbidden", "failed", "skipped"]
RunStatus = Literal["running", "succeeded", "partial", "failed"]

# The error of a run whose process stopped before it finished (see run_claims).
INTERRUPTED = "interrupted: the sync process stopped before the run finished"

# Statuses that count as the collection having been read completely.
_COMPLETE: frozenset[str] = frozenset({"succeeded", "empty"})
# Not read, by the source's choice: neither a success nor a failure of the run.
_NOT_CHOSEN = "skipped"


@dataclass
class CollectionResult:
    collection: str
    api: str | None
    status: CollectionStatus
    rows_upserted: int = 0
    rows_deleted: int = 0
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class RunRecord:
    id: str
    source_id: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    collections: list[CollectionResult] = field(default_factory=list)


def overall_status(results: list[CollectionResult]) -> RunStatus:
    """succeeded if every chosen collection was read, failed if none was, partial otherwise."""
    chosen = [result for result in results if result.status != _NOT_CHOSEN]
    complete = sum(result.status in _COMPLETE for result in chosen)
    if chosen and complete == len(chosen):
        return "succeeded"
    return "partial" if complete else "failed"


_RESULT_FIELDS = [f.name for f in fields(CollectionResult)]


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands an aggregate's timestamp back without a zone; it was written in UTC.
    # (Columns are made aware by shared.tables.UTCDateTime.)
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


async def record_collection(engine: AsyncEngine, run_id: str, result: CollectionResult) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sync_run_collections.insert().values(run_id=run_id, **asdict(result))
        )


async def beat(engine: AsyncEngine, run_id: str) -> None:
    """Show the run is alive, so it is not taken for one whose process died."""
    async with engine.begin() as connection:
        await connection.execute(
            sync_runs.update().where(sync_runs.c.id == run_id).values(heartbeat_at=utcnow())
        )


async def finish_run(
    engine: AsyncEngine, run_id: str, status: RunStatus, error: str | None = None
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sync_runs.update()
            .where(sync_runs.c.id == run_id)
            .values(status=status, error=error, finished_at=utcnow(), heartbeat_at=utcnow())
        )


async def last_run_started(
    engine: AsyncEngine, source_id: str, *, include_interrupted: bool = True
) -> datetime | None:
    query = sa.select(sa.func.max(sync_runs.c.started_at)).where(sync_runs.c.source_id == source_id)
    if not include_interrupted:
        query = query.where(sync_runs.c.error.is_distinct_from(INTERRUPTED))
    async with engine.connect() as connection:
        moment = await connection.scalar(query)
    return _aware(moment)


async def list_runs(engine: AsyncEngine, source_id: str, limit: int = 50) -> list[RunRecord]:
    """A source's runs, newest first, each with its collections."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.select(sync_runs)
                .where(sync_runs.c.source_id == source_id)
                .order_by(sync_runs.c.started_at.desc(), sync_runs.c.id)
                .limit(limit)
            )
        ).all()
        runs = {
            row.id: RunRecord(
                id=row.id,
                source_id=row.source_id,
                trigger=row.trigger,
                status=row.status,
                started_at=row.started_at,
                finished_at=row.finished_at,
                error=row.error,
            )
            for row in rows
        }
        if runs:
            collections = await connection.execute(
                sa.select(sync_run_collections)
                .where(sync_run_collections.c.run_id.in_(list(runs)))
                .order_by(sync_run_collections.c.started_at, sync_run_collections.c.collection)
            )
            for row in collections:
                runs[row.run_id].collections.append(
                    CollectionResult(**{name: row._mapping[name] for name in _RESULT_FIELDS})
                )
    return list(runs.values())
