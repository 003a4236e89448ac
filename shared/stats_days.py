"""Days as SendGrid's statistics count them: calendar days in the account's time zone, each
turned into the half-open range of UTC moments it covers.

SendGrid buckets `/v3/stats` by day in the time zone of the account's settings, and no API
tells which zone that is (more-apis.md §3.3), so each source names it (`stats_timezone`, an
IANA name, default UTC). A day's bounds are computed here, in Python, so the stored events of
a day are counted with the same range query on SQLite and PostgreSQL: `timestamp >= start
AND timestamp < end`, on the index of `timestamp`. A day of a daylight-saving change is 23 or
25 hours long, and consecutive days always meet exactly (each one ends where the next begins).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_TIMEZONE = "UTC"


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    # The IANA names the time zone database has (the system's, else the tzdata package's);
    # checked against the list rather than by loading, which would also take file paths.
    return frozenset(available_timezones() | {"UTC"})


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone name (`Europe/Paris`, `America/New_York`, `UTC`)."""
    name = name.strip()
    if name not in _known_zones():
        raise ValueError(
            f"{name!r} is not an IANA time zone name such as UTC, Europe/Paris or "
            "America/New_York (the time zone of the SendGrid account's settings)"
        )
    return name


@dataclass(frozen=True)
class DayRange:
    """One calendar day of a time zone, as UTC moments: `start <= t < end`."""

    day: date
    start: datetime
    end: datetime


def day_range(day: date, zone: ZoneInfo) -> DayRange:
    def midnight(of: date) -> datetime:
        return datetime.combine(of, time(0), tzinfo=zone).astimezone(UTC)

    return DayRange(day, midnight(day), midnight(day + timedelta(days=1)))


def settled_days(
    now: datetime,
    zone: ZoneInfo,
    *,
    settle: timedelta,
    days: int,
    collecting_since: datetime,
) -> list[DayRange]:
    """The days to reconcile at `now`, oldest first: among the last `days` calendar days of
    the zone before today, those that ended at least `settle` ago (SendGrid's retries of
    their events are over) and began once the source was collecting (`collecting_since`):
    a day only partly covered would show as missing what was never sent to the source."""
    today = now.astimezone(zone).date()
    candidates = (day_range(today - timedelta(days=n), zone) for n in range(days, 0, -1))
    return [
        candidate
        for candidate in candidates
        if candidate.end + settle <= now and candidate.start >= collecting_since
    ]
