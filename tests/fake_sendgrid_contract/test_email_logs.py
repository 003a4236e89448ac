"""The fake's Email Logs API (`POST /v3/logs`, `GET /v3/logs/{sg_message_id}`) answers as
tsg_logs_v3.yaml says: its listings, its message details (every event type of the webhook
samples, as Email Logs events), its 400, 403, 404 and 429; and it filters with the documented
query language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from tests.email_logs_samples import add_samples
from tests.fake_sendgrid.logs_query import STATUSES
from tests.fake_sendgrid.state import FakeAccountState
from tests.fake_sendgrid_contract.openapi import response_errors

SPEC = "tsg_logs_v3"
LIST = "/v3/logs"
DETAIL = "/v3/logs/{sg_message_id}"
CREATED = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)


def window(start: str, end: str, *conditions: str) -> str:
    return " AND ".join(
        [
            f'sg_message_id_created_at >= TIMESTAMP "{start}"',
            f'sg_message_id_created_at < TIMESTAMP "{end}"',
            *conditions,
        ]
    )


def assert_documented(path: str, response: httpx.Response, method: str) -> None:
    errors = response_errors(SPEC, path, response, method)
    assert not errors, f"{response.request.url} {response.status_code}:\n" + "\n".join(errors)


async def test_listing_and_every_detail_match_the_file(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    added = add_samples(state.email_logs, CREATED)
    query = window("2026-01-10T12:00:00Z", "2026-01-10T12:00:01Z")

    listing = await api.post(LIST, json={"query": query, "limit": 1000})
    details = [
        await api.get(f"{LIST}/{quote(sg_message_id, safe='')}") for sg_message_id, _ in added
    ]

    assert listing.status_code == 200, listing.text
    assert_documented(LIST, listing, "post")
    assert len(listing.json()["messages"]) == len(added)
    for response in details:
        assert response.status_code == 200, response.text
        assert_documented(DETAIL, response, "get")
    kinds = {e["event"] for r in details for e in r.json()["events"]}
    assert kinds == {
        "processed", "dropped", "delivered", "deferred", "bounce", "open", "click",
        "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe",
    }  # fmt: skip


async def test_generated_messages_of_every_status_match_the_file(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    ids = state.email_logs.generate(12, start=CREATED, seconds=60, statuses=STATUSES)

    listing = await api.post(LIST, json={"limit": 1000})
    details = [await api.get(f"{LIST}/{sg_message_id}") for sg_message_id in ids]

    assert_documented(LIST, listing, "post")
    assert {m["status"] for m in listing.json()["messages"]} == set(STATUSES)
    for response in details:
        assert_documented(DETAIL, response, "get")


async def test_the_errors_match_the_file(state: FakeAccountState, api: httpx.AsyncClient) -> None:
    ids = state.email_logs.generate(2, start=CREATED, seconds=1)
    state.email_logs.not_found.add(ids[0])

    bad_query = await api.post(LIST, json={"query": "subject LIKE 'x%'", "limit": 10})
    bad_limit = await api.post(LIST, json={"limit": 1001})
    gone = await api.get(f"{LIST}/{ids[0]}")
    state.email_logs.throttle(2, reset=1_767_225_660)
    throttled = [await api.post(LIST, json={"limit": 10}), await api.get(f"{LIST}/{ids[1]}")]
    state.email_logs.forbidden = True
    forbidden = [await api.post(LIST, json={"limit": 10}), await api.get(f"{LIST}/{ids[1]}")]

    for response, status in [(bad_query, 400), (bad_limit, 400)]:
        assert response.status_code == status
        assert_documented(LIST, response, "post")
    assert gone.status_code == 404
    assert_documented(DETAIL, gone, "get")
    for (listed, detail), status in [(throttled, 429), (forbidden, 403)]:
        assert (listed.status_code, detail.status_code) == (status, status)
        assert_documented(LIST, listed, "post")
        assert_documented(DETAIL, detail, "get")
    assert throttled[0].headers["X-RateLimit-Remaining"] == "0"
    assert throttled[0].headers["X-RateLimit-Reset"] == "1767225660"


async def test_the_check_fails_on_answers_unlike_the_file(state: FakeAccountState) -> None:
    """The schemas do catch a wrong shape, so the tests above can fail."""
    request = httpx.Request("GET", "https://api.sendgrid.com/v3/logs/x")
    detail = state.email_logs.add(
        "m1", [{"event": "deferred", "email": "a@example.com", "sg_event_id": "e",
                "sg_message_id": "m1", "smtp-id": "<m1>", "timestamp": 1, "response": "4",
                "attempt": "2"}], created_at=CREATED,
    )  # fmt: skip
    wrong_details = [
        {k: v for k, v in detail.items() if k != "events"},
        {**detail, "events": [{**detail["events"][0], "attempt": 1}]},  # an int, not "1"
        {**detail, "events": [{**detail["events"][0], "tls": 0}]},  # only 1, when used
        {**detail, "status": "block"},
    ]
    wrong_listing = {"messages": [{"sg_message_id": "m1", "to_email": "a@example.com"}]}

    for body in wrong_details:
        answer = httpx.Response(200, json=body, request=request)
        assert response_errors(SPEC, DETAIL, answer, "get"), body
    answer = httpx.Response(200, json=wrong_listing, request=request)
    assert response_errors(SPEC, LIST, answer, "post")


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ((), 10),
        (('sg_message_id_created_at >= TIMESTAMP "2026-01-10T12:00:03Z"',), 7),
        (('sg_message_id_created_at > TIMESTAMP "2026-01-10T12:00:03Z"',), 6),
        (('sg_message_id_created_at < TIMESTAMP "2026-01-10T12:00:03Z"',), 3),
        (('sg_message_id_created_at <= TIMESTAMP "2026-01-10T12:00:03Z"',), 4),
        (
            (
                'sg_message_id_created_at >= TIMESTAMP "2026-01-10T12:00:02Z"',
                'sg_message_id_created_at < TIMESTAMP "2026-01-10T12:00:05Z"',
                "status IN ('deferred', 'bounced')",
            ),
            2,
        ),
    ],
)
async def test_the_query_filters_as_documented(
    state: FakeAccountState, api: httpx.AsyncClient, conditions: tuple[str, ...], expected: int
) -> None:
    # One message a second from 12:00:00, statuses processed, delivered, deferred, ... in turn.
    state.email_logs.generate(10, start=CREATED, seconds=10, statuses=STATUSES)

    answer = await api.post(LIST, json={"query": " AND ".join(conditions), "limit": 1000})

    assert answer.status_code == 200, answer.text
    assert len(answer.json()["messages"]) == expected


async def test_the_listing_honours_limit_and_lists_the_most_recent_first(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    ids = state.email_logs.generate(30, start=CREATED, seconds=30)

    default = await api.post(LIST, json={})
    limited = await api.post(LIST, json={"limit": 25})

    assert [m["sg_message_id"] for m in default.json()["messages"]] == ids[::-1][:10]
    assert len(limited.json()["messages"]) == 25
    first = limited.json()["messages"][0]
    assert first["sg_message_id_created_at"] == (CREATED + timedelta(seconds=29)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
