"""The `sendgrid_source_completeness_ratio` gauge: per source, the worst ratio (stored events
/ SendGrid's count) among the alarmed metrics of the last day reconciled; 1 when that day is
complete, below 1 when events are missing.

As with the webhook gauge (shared/webhook_gauge.py), metrics are per process: the sync
service reconciles every source and refreshes the gauge from the `completeness` tables on each
scheduler pass, so its `/metrics` is the one to scrape; a process that reconciles a source
sets its value at once (`show`). A source never reconciled has no series.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.completeness_table import last_day_worst_ratio
from shared.source_rows import SourceRows
from shared.tables import source_tables

COMPLETENESS_RATIO = Gauge(
    "sendgrid_source_completeness_ratio",
    "Stored events / SendGrid's count, the worst metric of the last day reconciled (see the "
    "README, Completeness)",
    ["source"],
)


def show(source_id: str, ratio: float | None) -> None:
    if ratio is None:
        with contextlib.suppress(KeyError):  # no series yet
            COMPLETENESS_RATIO.remove(source_id)
        return
    COMPLETENESS_RATIO.labels(source_id).set(ratio)


async def refresh(engine: AsyncEngine) -> None:
    """Every active source's value from its table; removed sources' series are dropped."""
    sources = await SourceRows(engine).list_sources()
    ratios: dict[str, float | None] = {}
    async with engine.connect() as connection:
        for source in sources:
            ratios[source.id] = await last_day_worst_ratio(
                connection, source_tables(source.schema_name)
            )
    COMPLETENESS_RATIO.clear()
    for source_id, ratio in ratios.items():
        show(source_id, ratio)
