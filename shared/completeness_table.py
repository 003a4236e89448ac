"""The `completeness` table of a source's schema: written by each reconciliation, one row per
day and metric (a re-check of a day updates its rows), read by the API, the CLI and the gauge.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.completeness_metrics import ALARMED, BY_METRIC
from shared.completeness_verdict import MetricFigures, verdict, worst_ratio
from shared.schemas import CompletenessDay, CompletenessMetric, CompletenessReport
from shared.source_rows import Source
from shared.tables import SourceTables, source_tables


async def write_days(
    connection: AsyncConnection,
    tables: SourceTables,
    days: Sequence[tuple[date, Sequence[MetricFigures]]],
    checked_at: datetime,
) -> None:
    """Insert each day's figures, or update the ones a previous check stored."""
    rows = [
        {
            "day": day,
            "metric": figures.metric,
            "sendgrid_count": figures.sendgrid_count,
            "stored_count": figures.stored_count,
            "missing": figures.missing,
            "ratio": figures.ratio,
            "checked_at": checked_at,
        }
        for day, metrics in days
        for figures in metrics
    ]
    if not rows:
        return
    table = tables.completeness
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.day, table.c.metric],
        set_={
            name: insert.excluded[name]
            for name in ("sendgrid_count", "stored_count", "missing", "ratio", "checked_at")
        },
    )
    await connection.execute(statement, rows)


def _figures(row: Any) -> MetricFigures:
    return MetricFigures(row.metric, int(row.sendgrid_count), int(row.stored_count))


async def read_days(
    connection: AsyncConnection, tables: SourceTables, days: int
) -> list[CompletenessDay]:
    """The `days` most recent days reconciled, newest first, each with its verdict."""
    table = tables.completeness
    recent = sa.select(table.c.day).distinct().order_by(table.c.day.desc()).limit(days).subquery()
    rows = await connection.execute(
        sa.select(table)
        .where(table.c.day.in_(sa.select(recent.c.day)))
        .order_by(table.c.day.desc(), table.c.metric)
    )
    order = list(BY_METRIC)
    result = []
    for day, group in groupby(rows, key=lambda row: row.day):
        # Rows of a metric this version does not compare (any more) are left out.
        stored = [row for row in group if row.metric in BY_METRIC]
        if not stored:
            continue
        figures = [_figures(row) for row in stored]
        status, line = verdict(figures)
        result.append(
            CompletenessDay(
                day=day,
                status=status,
                verdict=line,
                checked_at=max(row.checked_at for row in stored),
                metrics=[
                    CompletenessMetric(
                        metric=f.metric,
                        sendgrid_count=f.sendgrid_count,
                        stored_count=f.stored_count,
                        missing=f.missing,
                        ratio=f.ratio,
                        trend_only=not f.alarmed,
                    )
                    for f in sorted(figures, key=lambda f: order.index(f.metric))
                ],
            )
        )
    return result


async def last_day_worst_ratio(connection: AsyncConnection, tables: SourceTables) -> float | None:
    """The worst ratio of the alarmed metrics on the latest day reconciled (None: no day)."""
    table = tables.completeness
    last = await connection.scalar(sa.select(sa.func.max(table.c.day)))
    if last is None:
        return None
    rows = await connection.execute(
        sa.select(table).where(table.c.day == last, table.c.metric.in_(ALARMED))
    )
    return worst_ratio(_figures(row) for row in rows)


async def completeness_report(engine: AsyncEngine, source: Source, days: int) -> CompletenessReport:
    """What the API and the CLI show: the last `days` days reconciled and the last check."""
    async with engine.connect() as connection:
        reconciled = await read_days(connection, source_tables(source.schema_name), days)
    return CompletenessReport(
        source_id=source.id,
        stats_timezone=source.stats_timezone,
        checked_at=source.completeness_checked_at,
        error=source.completeness_error,
        days=reconciled,
    )
