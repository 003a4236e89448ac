"""Marketing Campaigns statistics in the fake app, as tsg_mc_stats_v3.yaml answers them:
`GET /v3/marketing/stats/singlesends` (SinglesendsResponse) and
`GET /v3/marketing/stats/automations` (AutomationsResponse), each
`{"results": [...], "_metadata": {prev, self, next, count}}`, paged by `page_size` (1..50,
default 25) and `page_token`, narrowed by `singlesend_ids` / `automation_ids` (comma lists of
at most 25).

A row is one object's stats for one A/B variation and phase (single sends) or one step
(automations): the same id comes back once per variation/phase or step when the account holds
such rows, which is why a row's key is the id with those fields, never the id alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fake_sendgrid.params import comma_list, int_param, page_offset
from tests.fake_sendgrid.payloads import JSON, paged

if TYPE_CHECKING:
    from tests.fake_sendgrid.state import FakeAccountState

# mc_stats `Metrics`: every one is required.
MARKETING_METRICS = (
    "bounce_drops",
    "bounces",
    "clicks",
    "delivered",
    "invalid_emails",
    "opens",
    "requests",
    "spam_report_drops",
    "spam_reports",
    "unique_clicks",
    "unique_opens",
    "unsubscribes",
)
AB_PHASES = ("send", "test", "all")
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 50
MAX_IDS = 25


def _metrics(given: dict[str, int]) -> dict[str, int]:
    unknown = sorted(set(given) - set(MARKETING_METRICS))
    if unknown:
        raise ValueError(f"not Marketing Campaigns metrics: {unknown}")
    return {name: given.get(name, 0) for name in MARKETING_METRICS}


def singlesend_stat(
    send_id: str,
    *,
    ab_variation: str = "all",
    ab_phase: str = "all",
    aggregation: str = "total",
    **metrics: int,
) -> JSON:
    """One SinglesendsResponse row: `ab_variation` and `ab_phase` are "all" unless the stats
    are grouped by them; every metric is present, zero unless given."""
    if ab_phase not in AB_PHASES:
        raise ValueError(f"ab_phase is one of {AB_PHASES}, not {ab_phase!r}")
    return {
        "id": send_id,
        "ab_variation": ab_variation,
        "ab_phase": ab_phase,
        "aggregation": aggregation,
        "stats": _metrics(metrics),
    }


def automation_stat(
    automation_id: str, *, step_id: str = "all", aggregation: str = "total", **metrics: int
) -> JSON:
    """One AutomationsResponse row: `step_id` is "all" unless grouped by step; every metric
    is present, zero unless given."""
    return {
        "id": automation_id,
        "aggregation": aggregation,
        "step_id": step_id,
        "stats": _metrics(metrics),
    }


def _stats_page(request: Request, rows: list[JSON], ids_param: str) -> JSONResponse:
    query = request.query_params
    size = int_param(
        query, "page_size", default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE
    )
    wanted = set(comma_list(query, ids_param, max_items=MAX_IDS))
    chosen = [row for row in rows if not wanted or row["id"] in wanted]
    start = page_offset(query, len(chosen))
    return JSONResponse(paged(chosen, str(request.url), size, start, key="results"))


def add_marketing_stats_routes(app: FastAPI, account: FakeAccountState) -> None:
    """On the app itself, not an included router, so respx_route finds each route."""

    @app.get("/v3/marketing/stats/singlesends")
    async def singlesend_stats(request: Request) -> JSONResponse:
        return _stats_page(request, account.singlesend_stats, "singlesend_ids")

    @app.get("/v3/marketing/stats/automations")
    async def automation_stats(request: Request) -> JSONResponse:
        return _stats_page(request, account.automation_stats, "automation_ids")
