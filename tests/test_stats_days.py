"""Days in a time zone as UTC ranges (shared/stats_days.py), which days are reconciled, the
time zone names accepted, and each day's verdict (shared/completeness_verdict.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared.completeness_verdict import MetricFigures, verdict, worst_ratio
from shared.schemas import SourceCreate, SourceUpdate
from shared.stats_days import check_timezone, day_range, settled_days
from tests.conftest import api_key

NEW_YORK = ZoneInfo("America/New_York")


def test_a_day_in_new_york_is_its_utc_range() -> None:
    day = day_range(date(2026, 3, 1), NEW_YORK)

    assert day.start == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert day.end == datetime(2026, 3, 2, 5, tzinfo=UTC)
    # 03:30 UTC on the 2nd is on the 1st there.
    assert day.start <= datetime(2026, 3, 2, 3, 30, tzinfo=UTC) < day.end


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), 23),  # clocks go forward
        ("America/New_York", date(2026, 11, 1), 25),  # and back
        ("Europe/Paris", date(2026, 3, 29), 23),
        ("UTC", date(2026, 3, 8), 24),
    ],
)
def test_days_of_a_clock_change_are_23_or_25_hours_and_days_meet(
    zone: str, day: date, hours: int
) -> None:
    tz = ZoneInfo(zone)
    this = day_range(day, tz)

    assert this.end - this.start == timedelta(hours=hours)
    assert day_range(day - timedelta(days=1), tz).end == this.start
    assert day_range(day + timedelta(days=1), tz).start == this.end


@pytest.mark.parametrize("zone", ["America/Santiago", "Asia/Tehran", "Australia/Lord_Howe"])
def test_every_day_of_a_year_meets_the_next_even_where_clocks_change_at_midnight(
    zone: str,
) -> None:
    tz = ZoneInfo(zone)
    days = [day_range(date(2026, 1, 1) + timedelta(days=n), tz) for n in range(366)]

    for this, following in itertools.pairwise(days):
        assert this.end == following.start
        assert timedelta(hours=22) <= this.end - this.start <= timedelta(hours=26)


def test_settled_days_ended_long_enough_ago_within_the_window() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)

    days = settled_days(
        now, ZoneInfo("UTC"), settle=timedelta(hours=48), days=30, collecting_since=long_ago
    )

    # 03-08 ended 36 h ago: not yet; the window is the 30 days before today, 02-08 to 03-09.
    assert (days[0].day, days[-1].day, len(days)) == (date(2026, 2, 8), date(2026, 3, 7), 28)
    # A day is settled exactly when its end is `settle` ago.
    at_the_edge = settled_days(
        datetime(2026, 3, 10, tzinfo=UTC),
        ZoneInfo("UTC"),
        settle=timedelta(hours=48),
        days=3,
        collecting_since=long_ago,
    )
    assert [d.day for d in at_the_edge] == [date(2026, 3, 7)]


def test_settled_days_are_those_of_the_zone() -> None:
    # 03:00 UTC on 03-10 is still 03-09 in New York: its "today" is the 9th.
    now = datetime(2026, 3, 10, 3, tzinfo=UTC)
    days = settled_days(
        now,
        NEW_YORK,
        settle=timedelta(0),
        days=2,
        collecting_since=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert [d.day for d in days] == [date(2026, 3, 7), date(2026, 3, 8)]


def test_days_not_wholly_collected_are_left_out() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    zone = ZoneInfo("UTC")

    def first(since: datetime) -> date:
        days = settled_days(now, zone, settle=timedelta(0), days=30, collecting_since=since)
        return days[0].day

    assert first(datetime(2026, 3, 5, 0, 0, tzinfo=UTC)) == date(2026, 3, 5)
    assert first(datetime(2026, 3, 5, 0, 1, tzinfo=UTC)) == date(2026, 3, 6)


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_iana_names_are_accepted(name: str) -> None:
    assert check_timezone(f" {name} ") == name
    assert SourceUpdate(stats_timezone=name).stats_timezone == name


@pytest.mark.parametrize(
    "name",
    ["", "Mars/Olympus_Mons", "america/new_york", "Europe/../UTC", "/etc/localtime",
     "+05:00", "Europe/Paris\x00"],
)  # fmt: skip
def test_anything_else_is_refused_with_a_message(name: str) -> None:
    with pytest.raises(ValidationError, match="is not an IANA time zone name"):
        SourceCreate(name="SendGrid", api_key=api_key(), stats_timezone=name)


def test_a_new_source_counts_in_utc_unless_told() -> None:
    assert SourceCreate(name="SendGrid", api_key=api_key()).stats_timezone == "UTC"


def figures(**pairs: tuple[int, int]) -> list[MetricFigures]:
    return [MetricFigures(metric, sendgrid, stored) for metric, (sendgrid, stored) in pairs.items()]


MORE_CLICKS = "more stored than SendGrid counts (clicks +3)"


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ({"delivered": (10, 10), "opens": (0, 0)}, ("complete", "complete")),
        ({"delivered": (10, 9)}, ("missing", "1 event missing in delivered")),
        (
            {"opens": (5, 2), "processed": (10, 4), "delivered": (3, 3)},
            ("missing", "6 events missing in processed, 3 in opens"),
        ),
        (
            {"delivered": (10, 8), "clicks": (1, 4)},
            ("missing", f"2 events missing in delivered; {MORE_CLICKS}"),
        ),
        ({"clicks": (0, 3)}, ("more_stored", MORE_CLICKS)),
        # Trends never decide the verdict.
        (
            {"deferred": (40, 2), "unique_opens": (9, 1), "delivered": (1, 1)},
            ("complete", "complete"),
        ),
    ],
)
def test_each_day_has_a_one_line_verdict(
    pairs: dict[str, tuple[int, int]], expected: tuple[str, str]
) -> None:
    assert verdict(figures(**pairs)) == expected


def test_ratios_and_the_worst_of_a_day() -> None:
    day = figures(delivered=(10, 5), opens=(4, 4), clicks=(0, 3), deferred=(10, 0), bounces=(0, 0))
    ratios = {f.metric: f.ratio for f in day}

    assert ratios == {"delivered": 0.5, "opens": 1.0, "clicks": None, "deferred": 0.0,
                      "bounces": 1.0}  # fmt: skip
    assert worst_ratio(day) == 0.5  # deferred is a trend
    assert worst_ratio(figures(clicks=(0, 3))) == 1.0
