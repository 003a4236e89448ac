"""What the console calls, in process: events per hour, the latest rejected events, the
overview, the relay of the sync runs to the real sync service, and the console's own files
(headers, no inline script, shipped in the wheel). tests/console drives the same through a
browser against the services served for real.

Two tests stand in for a sync service that cannot be produced on demand otherwise: one that
does not answer (a connection refused) and one with another ADMIN_TOKEN (its 401)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa
from fastapi import FastAPI

from ingest_service.console_site import CONSOLE_DIR, CONTENT_SECURITY_POLICY
from shared.rejected_events import PREVIEW_BYTES
from shared.settings import Settings
from shared.tables import source_tables
from sync_service.app import create_app as create_sync_app
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.webhook_helpers import body_of, new_source

ROOT = Path(__file__).resolve().parents[1]
SYNC_URL = "http://sync.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"SYNC_URL": SYNC_URL})


def delivered(n: int) -> dict[str, Any]:
    return {
        "event": "delivered",
        "email": f"u{n}@example.com",
        "timestamp": 1700000000 + n,
        "sg_event_id": f"hourly-{n}",
    }


async def test_events_per_hour_are_the_stored_counts_by_received_hour_and_type(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    opens = [delivered(n) | {"event": "open", "sg_event_id": f"open-{n}"} for n in range(3)]
    stored = await ingest.post(source["path"], content=body_of([*map(delivered, range(7)), *opens]))
    assert stored.json()["stored"] == 10
    # Four deliveries moved back 5 hours, one back 3 days (outside the window).
    delivered_table = source_tables(source["schema"]).events["delivered"]
    async with ingest_app.state.engine.begin() as connection:
        rows = (await connection.execute(sa.select(delivered_table))).all()
        for row in rows[:5]:
            back = timedelta(days=3) if row.id == rows[0].id else timedelta(hours=5)
            await connection.execute(
                delivered_table.update()
                .where(delivered_table.c.id == row.id)
                .values(received_at=row.received_at - back)
            )
        received = [
            r.received_at for r in (await connection.execute(sa.select(delivered_table))).all()
        ]

    answer = (await ingest.get(f"/sources/{source['id']}/events/hourly?hours=48")).json()

    hours = [datetime.fromisoformat(h) for h in answer["hours"]]
    assert len(hours) == 48
    assert all(h.minute == h.second == 0 and h.utcoffset() == timedelta(0) for h in hours)
    assert hours == sorted(hours)
    assert datetime.fromisoformat(answer["end"]) == hours[-1] + timedelta(hours=1)
    assert hours[-1] <= datetime.now(UTC) < datetime.fromisoformat(answer["end"])
    series = {s["event"]: s for s in answer["series"]}
    assert len(series) == 12  # every type, zeros too
    assert series["open"]["table"] == "_open"
    expected = Counter(
        r.astimezone(UTC).replace(minute=0, second=0, microsecond=0) for r in received
    )
    assert series["delivered"]["counts"] == [expected.get(h, 0) for h in hours]
    assert series["delivered"]["total"] == 6  # the one 3 days back is outside
    assert sum(series["delivered"]["counts"][-6:]) == 6
    assert series["open"]["counts"][-1] == 3
    assert series["bounce"]["total"] == 0

    one = (await ingest.get(f"/sources/{source['id']}/events/hourly?hours=1")).json()
    assert {s["event"]: s["total"] for s in one["series"] if s["total"]} == {
        "delivered": 2,
        "open": 3,
    }


@pytest.mark.parametrize("hours", ["0", "169", "x"])
async def test_hours_out_of_range_are_refused(ingest: httpx.AsyncClient, hours: str) -> None:
    source = await new_source(ingest)
    answer = await ingest.get(f"/sources/{source['id']}/events/hourly?hours={hours}")
    assert answer.status_code == 422
    assert answer.json()["error"]["message"].startswith("query.hours:")


async def test_the_latest_rejected_events_come_newest_first_with_a_preview(
    ingest: httpx.AsyncClient,
) -> None:
    source = await new_source(ingest)
    first = {"event": "teleported", "email": "a@example.com", "timestamp": 1}
    await ingest.post(source["path"], content=body_of([first]))
    big = b"[" + b"\xff" + b"x" * (PREVIEW_BYTES * 2) + b"]"
    assert (await ingest.post(source["path"], content=big)).status_code == 400

    answer = (await ingest.get(f"/sources/{source['id']}/rejected?limit=5")).json()

    newest, oldest = answer["events"]
    assert newest["payload_bytes"] == len(big)
    assert newest["truncated"] is True
    assert newest["payload_preview"].startswith("[\ufffdxxx")
    assert len(newest["payload_preview"].encode()) <= PREVIEW_BYTES + 2  # U+FFFD is 3 bytes
    assert "UTF-8" in newest["reason"] or "JSON" in newest["reason"]
    assert oldest["reason"] == "unknown event type 'teleported'"
    assert oldest["event"] == "teleported"
    assert oldest["truncated"] is False
    assert oldest["payload_preview"] == (
        '{"email":"a@example.com","event":"teleported","timestamp":1}'
    )
    only = (await ingest.get(f"/sources/{source['id']}/rejected?limit=1")).json()["events"]
    assert [e["id"] for e in only] == [newest["id"]]


async def test_a_sync_service_that_cannot_be_reached_is_named_and_the_overview_still_answers(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter
) -> None:
    sendgrid.route(host="sync.test").mock(side_effect=httpx.ConnectError("refused"))
    source = await new_source(ingest)

    relayed = await ingest.get(f"/sources/{source['id']}/syncs")
    assert relayed.status_code == 502
    assert relayed.json()["error"]["message"] == (
        f"the sync service at {SYNC_URL} did not answer (ConnectError): start it "
        "(sendgrid-source sync, or up), or set SYNC_URL to where it listens"
    )
    assert (await ingest.post(f"/sources/{source['id']}/syncs")).status_code == 502

    overview = (await ingest.get("/overview")).json()
    (row,) = overview["sources"]
    assert row["source"]["id"] == source["id"]
    assert row["source"]["webhook"]["events_stored"] == 0
    assert row["last_run"] is None
    assert row["runs_error"] == relayed.json()["error"]["message"]
    assert row["health"]["status"] == "amber"
    assert row["health"]["reasons"][0]["text"].startswith("sync runs unknown: the sync service")
    assert (await ingest.get(f"/sources/{source['id']}/overview")).json() == row


async def test_a_sync_service_refusing_the_token_says_both_need_the_same_admin_token(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter
) -> None:
    refusal = {"error": {"code": "unauthorized", "message": "the admin token is wrong"}}
    sendgrid.route(host="sync.test").respond(401, json=refusal)
    source = await new_source(ingest)
    answer = await ingest.post(f"/sources/{source['id']}/syncs")
    assert answer.status_code == 502
    assert "must have the same ADMIN_TOKEN" in answer.json()["error"]["message"]


async def test_the_sync_services_answers_are_relayed_as_they_are(
    settings: Settings, ingest: httpx.AsyncClient, account: FakeAccount, sendgrid: respx.MockRouter
) -> None:
    # The real sync service, in process; one "pending" poll keeps its run going ~2 s.
    account.polls_before_ready = 1
    sync_app = create_sync_app(settings, schedule=False)
    transport = httpx.ASGITransport(app=sync_app)

    async def to_sync_service(request: httpx.Request) -> httpx.Response:
        response = await transport.handle_async_request(request)
        await response.aread()
        return response

    route = sendgrid.route(host="sync.test").mock(side_effect=to_sync_service)
    source = await new_source(ingest)
    async with sync_app.router.lifespan_context(sync_app):
        started = await ingest.post(f"/sources/{source['id']}/syncs")
        busy = await ingest.post(f"/sources/{source['id']}/syncs")
        await sync_app.state.sync_service.wait_for_background()
        runs = (await ingest.get(f"/sources/{source['id']}/syncs?limit=5")).json()["runs"]

    assert started.status_code == 202
    assert busy.status_code == 409
    assert busy.json()["error"]["message"] == "a sync of source 'SendGrid' is already running"
    assert [run["id"] for run in runs] == [started.json()["run_id"]]
    assert runs[0]["status"] == "succeeded"
    assert {c["collection"] for c in runs[0]["collections"]} >= {"lists", "recipients"}
    assert route.calls.last.request.headers["authorization"] == ingest.headers["authorization"]
    # Only a stored source's id goes into the relayed URL.
    assert (await ingest.post("/sources/..%2F..%2Fmetrics/syncs")).status_code == 404
    assert route.call_count == 3


@pytest.mark.parametrize(
    "path", ["events/hourly", "rejected", "overview", "syncs"], ids=lambda p: p.split("/")[0]
)
async def test_console_calls_need_the_token_and_a_known_source(
    ingest: httpx.AsyncClient, path: str
) -> None:
    source = await new_source(ingest)
    anonymous = await ingest.get(f"/sources/{source['id']}/{path}", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    unknown = await ingest.get(f"/sources/no-such-source/{path}")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no source with id 'no-such-source'"


async def test_the_console_is_served_with_a_strict_policy_and_no_inline_script(
    ingest: httpx.AsyncClient,
) -> None:
    redirect = await ingest.get("/console")
    assert redirect.status_code in (307, 308)
    assert redirect.headers["location"].endswith("/console/")
    page = await ingest.get("/console/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    # Every script is a file of the console: none inline, none from elsewhere.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts
    for attributes, body in scripts:
        assert body.strip() == ""
        (source,) = re.findall(r'src="([^"]+)"', attributes)
        assert "//" not in source
        served = await ingest.get(f"/console/{source}")
        assert served.status_code == 200, source
        assert "javascript" in served.headers["content-type"]
    assert "style=" not in page.text
    assert (await ingest.get("/console/no-such-file.js")).status_code == 404


def test_every_console_file_ships_in_the_wheel_with_the_charting_licence() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ingest_service"]
    files = [p.relative_to(CONSOLE_DIR.parent).as_posix() for p in CONSOLE_DIR.rglob("*")]
    shipped = [f for f in files if any(fnmatch(f, pattern) for pattern in patterns)]
    assert sorted(shipped) == sorted(f for f in files if (CONSOLE_DIR.parent / f).is_file())
    assert "console/vendor/chart.js-LICENSE.md" in shipped
    # The modules import one another by relative paths that exist.
    for module in CONSOLE_DIR.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert (CONSOLE_DIR / imported).is_file(), (module.name, imported)


def test_the_sync_service_is_looked_for_where_it_listens_unless_sync_url_says(
    settings: Settings,
) -> None:
    local = settings.model_copy(
        update={"SYNC_URL": None, "SYNC_HOST": "0.0.0.0", "SYNC_PORT": 9001}  # noqa: S104
    )
    assert local.sync_service_url == "http://127.0.0.1:9001"
    named = local.model_copy(update={"SYNC_HOST": "10.1.2.3"})
    assert named.sync_service_url == "http://10.1.2.3:9001"
    assert local.model_copy(update={"SYNC_HOST": "::1"}).sync_service_url == "http://[::1]:9001"
    assert settings.sync_service_url == SYNC_URL
