"""The daily reconciliation (shared/reconciliation.py) of events stored through the real
receiver against the fake SendGrid's `/v3/stats`, and `/sources/{id}/completeness`: a day that
matches, a day missing events, more stored than counted, trends never alarmed on, a key
without `stats.read`, the days cut in the source's time zone, re-checks, and the gauge."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shared import completeness_gauge
from shared.completeness_metrics import METRICS, TRENDS
from shared.registry import SourceRegistry
from shared.tables import source_tables
from tests.conftest import admin_client
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.reconciliation_helpers import (
    DAY_COUNTS,
    START,
    Clock,
    collecting_since,
    day_traffic,
    event,
    post_events,
    reconciliation,
    unique,
)
from tests.webhook_helpers import Signer, new_source

DAY = date(2026, 3, 1)
DAY_START = datetime(2026, 3, 1, tzinfo=UTC)
# Two and a half days after DAY ended: DAY is settled, the days after it are not.
NOW = datetime(2026, 3, 4, 12, tzinfo=UTC)


@pytest.fixture
async def source(ingest: httpx.AsyncClient, ingest_app: FastAPI) -> dict[str, Any]:
    """A source collecting since START, DAY's traffic stored."""
    created = await new_source(ingest)
    await collecting_since(ingest_app, created["id"], START)
    await post_events(ingest, created["path"], day_traffic(DAY_START, DAY_COUNTS))
    return created


async def reconcile(app: FastAPI, source: dict[str, Any], now: datetime = NOW) -> Any:
    registry: SourceRegistry = app.state.registry
    return await reconciliation(app, Clock(now)).reconcile(await registry.rows.get(source["id"]))


async def report(ingest: httpx.AsyncClient, source: dict[str, Any], days: int = 1) -> Any:
    response = await ingest.get(f"/sources/{source['id']}/completeness", params={"days": days})
    assert response.status_code == 200, response.text
    return response.json()


def metrics_of(day: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in day["metrics"]}


def gauge(source_id: str) -> float | None:
    return REGISTRY.get_sample_value("sendgrid_source_completeness_ratio", {"source": source_id})


async def test_a_day_whose_counts_match_is_complete(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount, source: dict[str, Any]
) -> None:
    account.daily_stats[DAY.isoformat()] = DAY_COUNTS | unique(DAY_COUNTS)

    outcome = await reconcile(ingest_app, source)

    assert outcome.error is None
    # Every settled day since the source began collecting, SendGrid's range in one call.
    assert list(outcome.days) == [START.date() + timedelta(days=n) for n in range(10)]
    assert set(outcome.days.values()) == {("complete", "complete")}
    assert account.queries_to("/v3/stats") == [
        {"start_date": "2026-02-20", "end_date": "2026-03-01", "aggregated_by": "day"}
    ]
    answer = await report(ingest, source)
    assert (answer["stats_timezone"], answer["error"]) == ("UTC", None)
    assert answer["checked_at"] is not None
    [day] = answer["days"]
    assert (day["day"], day["status"], day["verdict"]) == ("2026-03-01", "complete", "complete")
    figures = metrics_of(day)
    assert list(figures) == [metric.metric for metric in METRICS]
    for metric, count in (DAY_COUNTS | unique(DAY_COUNTS)).items():
        assert figures[metric] | {"trend_only": None} == {
            "metric": metric,
            "sendgrid_count": count,
            "stored_count": count,
            "missing": 0,
            "ratio": 1.0,
            "trend_only": None,
            "stored_before_repair": None,
        }
        assert figures[metric]["trend_only"] is (metric in TRENDS)
    assert gauge(source["id"]) == 1.0


async def test_a_day_missing_events_is_found_with_how_many_and_where(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount, source: dict[str, Any]
) -> None:
    # SendGrid delivered 7 emails more than the receiver stored deliveries for, and
    # processed 1 more.
    counted = DAY_COUNTS | unique(DAY_COUNTS)
    counted["delivered"] += 7
    counted["processed"] += 1
    account.daily_stats[DAY.isoformat()] = counted

    outcome = await reconcile(ingest_app, source)

    assert outcome.days[DAY] == ("missing", "1 event missing in processed, 7 in delivered")
    [day] = (await report(ingest, source))["days"]
    assert day["status"] == "missing"
    delivered = metrics_of(day)["delivered"]
    assert (delivered["sendgrid_count"], delivered["stored_count"]) == (17, 10)
    assert delivered["missing"] == 7
    assert delivered["ratio"] == pytest.approx(10 / 17)
    assert gauge(source["id"]) == pytest.approx(10 / 17)

    # The deliveries arrive late; the next check finds the day complete, updating its rows.
    late = [
        event("delivered", f"late-{n}", DAY_START + timedelta(hours=20), f"late{n}@example.com")
        for n in range(7)
    ]
    late.append(event("processed", "late-p", DAY_START + timedelta(hours=21), "p@example.com"))
    await post_events(ingest, source["path"], late)
    again = await reconcile(ingest_app, source, NOW + timedelta(hours=3))

    assert again.days[DAY] == ("complete", "complete")
    [day] = (await report(ingest, source))["days"]
    assert metrics_of(day)["delivered"]["stored_count"] == 17
    assert datetime.fromisoformat(day["checked_at"]) == NOW + timedelta(hours=3)
    table = source_tables(source["schema"]).completeness
    async with ingest_app.state.engine.connect() as connection:
        rows = await connection.scalar(sa.select(sa.func.count()).select_from(table))
    assert rows == 10 * len(METRICS)  # one row per day and metric, updated in place
    assert gauge(source["id"]) == 1.0


async def test_more_stored_than_sendgrid_counts_is_said_so(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount, source: dict[str, Any]
) -> None:
    counted = DAY_COUNTS | unique(DAY_COUNTS)
    counted["opens"] -= 2
    account.daily_stats[DAY.isoformat()] = counted

    outcome = await reconcile(ingest_app, source)

    assert outcome.days[DAY] == ("more_stored", "more stored than SendGrid counts (opens +2)")
    [day] = (await report(ingest, source))["days"]
    opens = metrics_of(day)["opens"]
    assert (opens["missing"], opens["ratio"]) == (-2, pytest.approx(9 / 7))
    # Nothing is missing, so the worst ratio is that of a complete metric.
    assert gauge(source["id"]) == 1.0


async def test_trend_metrics_are_compared_but_never_alarmed_on(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount, source: dict[str, Any]
) -> None:
    counted = DAY_COUNTS | {"deferred": 50, "unique_opens": 100, "unique_clicks": 1}
    account.daily_stats[DAY.isoformat()] = counted

    outcome = await reconcile(ingest_app, source)

    assert outcome.days[DAY] == ("complete", "complete")
    figures = metrics_of((await report(ingest, source))["days"][0])
    assert {name: figures[name]["missing"] for name in TRENDS} == {
        "deferred": 45,
        "unique_opens": 97,
        "unique_clicks": -2,
    }
    assert gauge(source["id"]) == 1.0


async def test_a_key_without_stats_read_is_reported_and_keeps_the_days_checked_before(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount, source: dict[str, Any]
) -> None:
    account.daily_stats[DAY.isoformat()] = DAY_COUNTS | unique(DAY_COUNTS)
    await reconcile(ingest_app, source)
    account.forbidden.add("/v3/stats")

    outcome = await reconcile(ingest_app, source, NOW + timedelta(days=1))

    assert outcome.days == {}
    assert outcome.error == "not reconciled: the API key may not read /v3/stats: it needs the " \
        "stats.read scope"  # fmt: skip
    answer = await report(ingest, source)
    assert answer["error"] == outcome.error
    assert datetime.fromisoformat(answer["checked_at"]) == NOW + timedelta(days=1)
    [day] = answer["days"]  # the day checked before, as it was
    assert (day["day"], day["status"]) == ("2026-03-01", "complete")

    account.forbidden.discard("/v3/stats")
    assert (await reconcile(ingest_app, source, NOW + timedelta(days=2))).error is None
    assert (await report(ingest, source))["error"] is None


async def test_days_are_cut_in_the_source_time_zone(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    """An event at 03:30 UTC on the 2nd happened on the 1st in New York (UTC-5)."""
    created = await new_source(ingest)
    await collecting_since(ingest_app, created["id"], START)
    late_night = datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
    await post_events(
        ingest, created["path"], [event("delivered", "night", late_night, "n@example.com")]
    )
    now = datetime(2026, 3, 5, 12, tzinfo=UTC)  # 03-02 is settled in both zones

    def delivered(answer: dict[str, Any]) -> dict[str, int]:
        return {
            day["day"]: metrics_of(day)["delivered"]["stored_count"]
            for day in answer["days"]
            if day["day"] in ("2026-03-01", "2026-03-02")
        }

    await reconcile(ingest_app, created, now)
    assert delivered(await report(ingest, created, days=5)) == {"2026-03-01": 0, "2026-03-02": 1}

    changed = await ingest.patch(
        f"/sources/{created['id']}", json={"stats_timezone": "America/New_York"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["stats_timezone"] == "America/New_York"
    # The days cut in UTC are forgotten, and the source is due for a reconciliation.
    forgotten = await report(ingest, created, days=5)
    assert (forgotten["days"], forgotten["checked_at"]) == ([], None)
    await reconcile(ingest_app, created, now)
    answer = await report(ingest, created, days=5)
    assert answer["stats_timezone"] == "America/New_York"
    assert delivered(answer) == {"2026-03-01": 1, "2026-03-02": 0}


async def test_only_settled_days_since_the_source_was_collecting_are_reconciled(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    signer = Signer()
    created = await new_source(ingest, signer=signer)  # a webhook to watch
    # Registered on 03-01 at 10:00: that day is not wholly covered.
    await collecting_since(ingest_app, created["id"], datetime(2026, 3, 1, 10, tzinfo=UTC))
    now = datetime(2026, 3, 5, 12, tzinfo=UTC)

    outcome = await reconcile(ingest_app, created, now)

    # 03-02 ended 60 h ago; 03-03 ended 36 h ago, within RECONCILE_SETTLE (48 h).
    assert list(outcome.days) == [date(2026, 3, 2)]

    # An event stored from before the registration (e.g. a backfill) widens the days.
    await post_events(
        ingest,
        created["path"],
        [event("processed", "old", datetime(2026, 2, 25, 23, tzinfo=UTC), "o@example.com")],
        signer,
    )
    outcome = await reconcile(ingest_app, created, now)
    days = list(outcome.days)
    assert (days[0], days[-1], len(days)) == (date(2026, 2, 26), date(2026, 3, 2), 5)

    # RECONCILE_DAYS bounds them, counted back from today.
    registry: SourceRegistry = ingest_app.state.registry
    short = reconciliation(ingest_app, Clock(now), RECONCILE_DAYS=4)
    outcome = await short.reconcile(await registry.rows.get(created["id"]))
    assert list(outcome.days) == [date(2026, 3, 1), date(2026, 3, 2)]


async def test_a_source_with_no_settled_day_yet_is_not_asked_about(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    # Registered now, with a webhook to watch: no day of it has ended.
    created = await new_source(ingest, signer=Signer())

    registry: SourceRegistry = ingest_app.state.registry
    outcome = await reconciliation(ingest_app, Clock(datetime.now(UTC))).reconcile(
        await registry.rows.get(created["id"])
    )

    assert (outcome.days, outcome.error) == ({}, None)
    assert account.queries_to("/v3/stats") == []
    answer = await report(ingest, created)
    assert answer["days"] == []
    assert answer["checked_at"] is not None
    assert gauge(created["id"]) is None


async def test_the_gauge_is_refreshed_from_the_tables(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount, source: dict[str, Any]
) -> None:
    counted = DAY_COUNTS | unique(DAY_COUNTS)
    counted["bounces"] += 2
    account.daily_stats[DAY.isoformat()] = counted
    await reconcile(ingest_app, source)
    completeness_gauge.COMPLETENESS_RATIO.clear()

    await completeness_gauge.refresh(ingest_app.state.engine)

    assert gauge(source["id"]) == pytest.approx(0.5)  # 2 bounces stored of 4
    registry: SourceRegistry = ingest_app.state.registry
    await registry.remove(source["id"], drop_data=False)
    await completeness_gauge.refresh(ingest_app.state.engine)
    assert gauge(source["id"]) is None


async def test_the_completeness_api_needs_the_admin_token_and_a_known_source(
    ingest_app: FastAPI, ingest: httpx.AsyncClient, account: FakeAccount, source: dict[str, Any]
) -> None:
    path = f"/sources/{source['id']}/completeness"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingest_app), base_url="http://ingest.test"
    ) as anonymous:
        assert (await anonymous.get(path)).status_code == 401
        assert (await anonymous.post(path)).status_code == 401
    missing = await ingest.get("/sources/no-such-source/completeness")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    refused = await ingest.get(path, params={"days": 0})
    assert refused.status_code == 422
    assert "days" in refused.json()["error"]["message"]
    documented = (await ingest.get("/openapi.json")).json()["paths"][
        "/sources/{source_id}/completeness"
    ]
    assert set(documented) == {"get", "post"}


async def test_post_reconciles_now_and_answers_the_days(
    ingest_app: FastAPI, account: FakeAccount, source: dict[str, Any]
) -> None:
    counted = DAY_COUNTS | unique(DAY_COUNTS)
    counted["clicks"] += 3
    account.daily_stats[DAY.isoformat()] = counted
    ingest_app.state.reconciliation = reconciliation(ingest_app, Clock(NOW))

    async with admin_client(ingest_app) as client:
        response = await client.post(f"/sources/{source['id']}/completeness", params={"days": 2})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert [(d["day"], d["verdict"]) for d in answer["days"]] == [
        ("2026-03-01", "3 events missing in clicks"),
        ("2026-02-28", "complete"),
    ]
    assert datetime.fromisoformat(answer["checked_at"]) == NOW


async def test_a_source_without_a_webhook_or_events_is_said_not_to_be_reconciled(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, account: FakeAccount
) -> None:
    created = await new_source(ingest)  # no verification key, not managed, no event
    await collecting_since(ingest_app, created["id"], START)
    account.daily_stats[DAY.isoformat()] = {"delivered": 40}

    outcome = await reconcile(ingest_app, created)

    assert outcome.days == {}
    assert outcome.error is not None
    assert "has received no event and has no webhook set up to watch" in outcome.error
    assert account.queries_to("/v3/stats") == []
    assert (await report(ingest, created))["error"] == outcome.error

    # Its first event is what it takes (a webhook set up by hand, unsigned).
    await post_events(
        ingest, created["path"], [event("delivered", "first", DAY_START, "f@example.com")]
    )
    outcome = await reconcile(ingest_app, created)
    assert outcome.error is None
    assert outcome.days[DAY] == ("missing", "39 events missing in delivered")
