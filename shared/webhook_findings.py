"""The `webhook_findings` table: what each source's last webhook check found.

A finding keeps its `first_seen_at` for as long as checks keep finding it, `last_seen_at`
moves on every check that finds it, and it is deleted by the first check that no longer does.
`record` says which findings are new, so each is logged once, not on every check.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db_errors import lost_write_race
from shared.schemas import WebhookFinding
from shared.tables import webhook_findings
from shared.webhook_drift import FINDINGS, Finding


def _order(name: str) -> int:
    return FINDINGS.index(name) if name in FINDINGS else len(FINDINGS)


def _public(row: sa.Row[object]) -> WebhookFinding:
    return WebhookFinding(
        finding=row.finding,
        detail=row.detail,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        repaired_at=row.repaired_at,
    )


async def _rows(connection: AsyncConnection, source_id: str) -> list[WebhookFinding]:
    rows = await connection.execute(
        sa.select(webhook_findings).where(webhook_findings.c.source_id == source_id)
    )
    return sorted((_public(row) for row in rows), key=lambda f: _order(f.finding))


async def list_findings(engine: AsyncEngine, source_id: str) -> list[WebhookFinding]:
    async with engine.connect() as connection:
        return await _rows(connection, source_id)


async def all_findings(engine: AsyncEngine) -> dict[str, set[str]]:
    """Source id -> the names of its current findings (for the gauge)."""
    found: dict[str, set[str]] = {}
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(webhook_findings.c.source_id, webhook_findings.c.finding)
        )
        for source_id, finding in rows:
            found.setdefault(source_id, set()).add(finding)
    return found


async def record(
    engine: AsyncEngine,
    source_id: str,
    findings: Iterable[Finding],
    now: datetime,
    *,
    repaired: Collection[str] = (),
    keep: Collection[str] = (),
) -> tuple[list[WebhookFinding], list[str]]:
    """Store one check's findings; returns every current finding and the names of the new
    ones. A stored finding not found again is deleted, unless its name is in `keep` (the
    check could not tell, e.g. SendGrid was unreachable). Findings named in `repaired` get
    `repaired_at = now`.

    Two checks of one source can run at once (a sync run's and `GET .../webhook/check`): if
    the other one inserted a finding first, this one writes again and finds it stored, so the
    finding is new (and logged) once."""
    current = {f.finding: f for f in findings}
    try:
        return await _record(engine, source_id, current, now, repaired, keep)
    except DBAPIError as exc:
        if not lost_write_race(exc):
            raise
        return await _record(engine, source_id, current, now, repaired, keep)


async def _record(
    engine: AsyncEngine,
    source_id: str,
    current: dict[str, Finding],
    now: datetime,
    repaired: Collection[str],
    keep: Collection[str],
) -> tuple[list[WebhookFinding], list[str]]:
    async with engine.begin() as connection:
        stored = {
            row.finding: row
            for row in await connection.execute(
                sa.select(webhook_findings).where(webhook_findings.c.source_id == source_id)
            )
        }
        gone = [name for name in stored if name not in current and name not in keep]
        if gone:
            await connection.execute(
                webhook_findings.delete().where(
                    webhook_findings.c.source_id == source_id,
                    webhook_findings.c.finding.in_(gone),
                )
            )
        new: list[str] = []
        for name, finding in current.items():
            repaired_at = now if name in repaired else None
            if name in stored:
                values: dict[str, object] = {"detail": finding.detail, "last_seen_at": now}
                if repaired_at is not None:
                    values["repaired_at"] = repaired_at
                await connection.execute(
                    webhook_findings.update()
                    .where(
                        webhook_findings.c.source_id == source_id,
                        webhook_findings.c.finding == name,
                    )
                    .values(**values)
                )
            else:
                new.append(name)
                await connection.execute(
                    webhook_findings.insert().values(
                        source_id=source_id,
                        finding=name,
                        detail=finding.detail,
                        first_seen_at=now,
                        last_seen_at=now,
                        repaired_at=repaired_at,
                    )
                )
        return await _rows(connection, source_id), sorted(new, key=_order)
