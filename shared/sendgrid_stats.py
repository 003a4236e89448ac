"""SendGrid's global email statistics (`GET /v3/stats`), by day.

The webhook's silence check reads `processed` from it; the daily reconciliation against stats
reads the other metrics. One call covers a date range (start and end inclusive, in SendGrid's
account time zone, which the API does not state). The key needs the `stats.read` scope: a
403 is `StatsScopeMissing`, so a caller can say the check was skipped rather than fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import httpx

STATS_SCOPE: Final = "stats.read"
_PATH = "/v3/stats"
_TIMEOUT = 15.0


@dataclass(frozen=True)
class DayStats:
    day: date
    metrics: dict[str, int]  # processed, delivered, bounces, ... (missing ones are absent)

    def get(self, metric: str) -> int:
        return self.metrics.get(metric, 0)


class StatsApiError(Exception):
    """The statistics could not be read; `str()` says why."""


class StatsScopeMissing(StatsApiError):
    """The API key lacks `stats.read` (403)."""


def parse_day(entry: Any) -> DayStats:
    """One entry of a /v3/stats answer: its date and its metrics summed over its stats."""
    if not isinstance(entry, dict) or not isinstance(entry.get("date"), str):
        raise StatsApiError("a /v3/stats entry has no date")
    try:
        day = date.fromisoformat(entry["date"])
    except ValueError:
        raise StatsApiError(f"a /v3/stats entry has the date {entry['date']!r}") from None
    metrics: dict[str, int] = {}
    for stat in entry.get("stats") or []:
        values = stat.get("metrics") if isinstance(stat, dict) else None
        for name, value in (values or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                metrics[name] = metrics.get(name, 0) + value
    return DayStats(day, metrics)


def _parse(body: Any) -> list[DayStats]:
    if not isinstance(body, list):
        raise StatsApiError("SendGrid's /v3/stats answer was not a list of days")
    return [parse_day(entry) for entry in body]


async def fetch_daily_stats(
    http: httpx.AsyncClient, base_url: str, api_key: str, start: date, end: date
) -> list[DayStats]:
    """Each day's metrics from `start` to `end`, both included."""
    params = {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "aggregated_by": "day",
    }
    try:
        response = await http.get(
            f"{base_url.rstrip('/')}{_PATH}",
            params=params,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise StatsApiError(
            f"SendGrid could not be reached for {_PATH} ({type(exc).__name__})"
        ) from None
    if response.status_code == 403:
        raise StatsScopeMissing(
            f"the API key may not read {_PATH}: it needs the {STATS_SCOPE} scope"
        )
    if not response.is_success:
        raise StatsApiError(f"SendGrid answered {response.status_code} to GET {_PATH}")
    try:
        body = response.json()
    except ValueError:
        raise StatsApiError(f"SendGrid's {_PATH} answer was not JSON") from None
    return _parse(body)
