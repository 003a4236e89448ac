"""The `sendgrid_source_webhook_finding` gauge: 1 for each finding a source's webhook has, 0
for each it has not.

Metrics are per process. The sync service checks every source on each sync run and refreshes
the whole gauge from `webhook_findings` on each scheduler pass (`refresh`), so its `/metrics`
is the one to scrape and also shows checks the ingest service ran on demand; a process that
runs a check sets that source's values at once (`show`).
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.source_rows import SourceRows
from shared.webhook_drift import FINDINGS
from shared.webhook_findings import all_findings

WEBHOOK_FINDING = Gauge(
    "sendgrid_source_webhook_finding",
    "1 while the source's webhook has this finding (see the README, Watching the webhook)",
    ["source", "finding"],
)


def show(source_id: str, findings: Collection[str]) -> None:
    for name in FINDINGS:
        WEBHOOK_FINDING.labels(source_id, name).set(1 if name in findings else 0)


async def refresh(engine: AsyncEngine) -> None:
    """Every active source's values from the table; removed sources' series are dropped."""
    sources = await SourceRows(engine).list_sources()
    found = await all_findings(engine)
    WEBHOOK_FINDING.clear()
    for source in sources:
        show(source.id, found.get(source.id, set()))
