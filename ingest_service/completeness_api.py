"""`GET /sources/{id}/completeness` (admin token): the last days reconciled against SendGrid's
daily statistics, each with its verdict; `POST` reconciles now first.

The reconciliation itself (shared/reconciliation.py) is the one the sync service runs after
every sync and daily; this reads what it stored in the source's `completeness` table.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from shared.completeness_table import completeness_report
from shared.reconciliation import Reconciliation
from shared.registry import SourceRegistry
from shared.schemas import CompletenessReport, ErrorBody

router = APIRouter(
    prefix="/sources",
    tags=["sources"],
    responses={code: {"model": ErrorBody} for code in (401, 404, 422)},
)

Days = Annotated[
    int, Query(ge=1, le=366, description="how many of the most recent days reconciled to show")
]


def _registry(request: Request) -> SourceRegistry:
    registry: SourceRegistry = request.app.state.registry
    return registry


@router.get("/{source_id}/completeness", response_model=CompletenessReport)
async def get_completeness(source_id: str, request: Request, days: Days = 30) -> CompletenessReport:
    """Each of the last `days` days reconciled, newest first: SendGrid's count and the stored
    events' for every metric, and a verdict (complete / N events missing in a metric / more
    stored than SendGrid counts). `error` says why the last reconciliation could not run."""
    registry = _registry(request)
    source = await registry.rows.get(source_id)
    return await completeness_report(registry.engine, source, days)


@router.post("/{source_id}/completeness", response_model=CompletenessReport)
async def reconcile_now(source_id: str, request: Request, days: Days = 30) -> CompletenessReport:
    """Reconcile the source now (e.g. after changing its `stats_timezone`), then answer as the
    GET does. A SendGrid error is in `error`, not a failed request."""
    registry = _registry(request)
    reconciliation: Reconciliation = getattr(
        request.app.state, "reconciliation", None
    ) or Reconciliation(
        registry.engine, registry.settings, registry.http, registry.secrets, registry.counts
    )
    await reconciliation.reconcile(await registry.rows.get(source_id))
    source = await registry.rows.get(source_id)
    return await completeness_report(registry.engine, source, days)
