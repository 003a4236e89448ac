"""SendGrid's global email statistics (`GET /v3/stats`, tsg_stats_v3.yaml ListStat) in the fake
app: one entry per day from `start_date` to `end_date` (both included), aggregated by day,
each day's metrics from `FakeAccountState.daily_stats` (zero for the days it lacks). A test
takes the `stats.read` scope away with `account.forbidden.add("/v3/stats")`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fake_sendgrid.payloads import error_body, global_stats_day

if TYPE_CHECKING:
    from tests.fake_sendgrid.state import FakeAccountState


def add_stats_routes(app: FastAPI, account: FakeAccountState) -> None:
    """On the app itself, not an included router, so respx_route finds the route."""

    @app.get("/v3/stats")
    async def global_stats(request: Request) -> JSONResponse:
        query = dict(request.query_params)
        account.stats_queries.append(query)
        try:
            start = date.fromisoformat(query["start_date"])
            end = date.fromisoformat(query.get("end_date") or datetime.now(UTC).date().isoformat())
        except (KeyError, ValueError):
            return JSONResponse(error_body("start_date is required", "start_date"), 400)
        if query.get("aggregated_by", "day") != "day":
            return JSONResponse(error_body("only aggregated_by=day is faked", "aggregated_by"), 400)
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        return JSONResponse(
            [
                global_stats_day(d.isoformat(), account.daily_stats.get(d.isoformat(), {}))
                for d in days
            ]
        )
