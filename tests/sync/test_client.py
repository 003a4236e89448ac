"""The SendGrid client: auth, rate limits, retries and how errors come out."""

from __future__ import annotations

import httpx
import pytest
import respx

from sync_service.client import RetryPolicy, SendGridClient
from sync_service.errors import (
    AuthRejected,
    RateLimited,
    RequestRejected,
    RetryableAPIError,
    SendGridForbidden,
    SendGridNotFound,
)
from tests.fake_sendgrid.payloads import (
    API,
    error_body,
    marketing_list,
    rate_limit_headers,
    token_page,
)
from tests.sync.fakes import API_KEY, FakeTime

LISTS = f"{API}/v3/marketing/lists"
ONE_LIST = token_page(
    [marketing_list("ca7a3796-e8a8-4029-9ccb-df8937940562", "list-name", 0)],
    self_url=f"{LISTS}?page_size=100&page_token=",
)


async def test_sends_the_sources_key_as_bearer_and_joins_the_base_url(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    route = sendgrid_router.get(LISTS).respond(200, json=ONE_LIST)

    body = await sendgrid_api.get_json("/v3/marketing/lists", {"page_size": 100})

    assert body == ONE_LIST
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.url.params["page_size"] == "100"


async def test_two_sources_share_one_http_client_but_not_their_keys(
    sendgrid_http: httpx.AsyncClient, sendgrid_router: respx.Router
) -> None:
    route = sendgrid_router.get(LISTS).respond(200, json=ONE_LIST)
    first = SendGridClient(sendgrid_http, base_url=API, api_key="SG.first")
    second = SendGridClient(sendgrid_http, base_url=API, api_key="SG.second")

    await first.get_json("/v3/marketing/lists")
    await second.get_json("/v3/marketing/lists")

    keys = [call.request.headers["Authorization"] for call in route.calls]
    assert keys == ["Bearer SG.first", "Bearer SG.second"]


async def test_429_waits_until_the_reset_time_then_succeeds(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    reset = fake_time.now + 37
    seen_at: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen_at.append(fake_time.now)
        if len(seen_at) == 1:
            return httpx.Response(
                429,
                json=error_body("too many requests"),
                headers=rate_limit_headers(remaining=0, reset=reset),
            )
        return httpx.Response(200, json=ONE_LIST, headers=rate_limit_headers(599, reset + 60))

    sendgrid_router.get(LISTS).mock(side_effect=answer)

    body = await sendgrid_api.get_json("/v3/marketing/lists")

    assert body == ONE_LIST
    assert fake_time.sleeps == [37.0]
    assert seen_at[1] >= reset


async def test_a_spent_quota_delays_the_next_call_until_the_reset(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    reset = fake_time.now + 12
    seen_at: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen_at.append(fake_time.now)
        remaining = 0 if len(seen_at) == 1 else 599
        return httpx.Response(200, json=ONE_LIST, headers=rate_limit_headers(remaining, reset))

    sendgrid_router.get(LISTS).mock(side_effect=answer)

    await sendgrid_api.get_json("/v3/marketing/lists")
    assert fake_time.sleeps == []
    await sendgrid_api.get_json("/v3/marketing/lists")

    assert fake_time.sleeps == [12.0]
    assert seen_at == [reset - 12, reset]


async def test_a_far_reset_is_waited_for_only_up_to_the_bound_and_429s_are_bounded(
    sendgrid_http: httpx.AsyncClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    client = SendGridClient(
        sendgrid_http,
        base_url=API,
        api_key=API_KEY,
        policy=RetryPolicy(max_attempts=3, max_rate_limit_wait=90.0),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    far_reset = fake_time.now + 86_400
    route = sendgrid_router.get(LISTS).respond(
        429, json=error_body("too many requests"), headers=rate_limit_headers(0, far_reset)
    )

    with pytest.raises(RateLimited) as caught:
        await client.get_json("/v3/marketing/lists")

    assert route.call_count == 3
    assert fake_time.sleeps == [90.0, 90.0]
    assert caught.value.reset_at == int(far_reset)


async def test_5xx_is_retried_with_growing_jittered_backoff(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    route = sendgrid_router.get(LISTS).mock(
        side_effect=[
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(500, json={"errors": [{"message": "internal error"}]}),
            httpx.Response(502),
            httpx.Response(200, json=ONE_LIST),
        ]
    )

    body = await sendgrid_api.get_json("/v3/marketing/lists")

    assert body == ONE_LIST
    assert route.call_count == 4
    first, second, third = fake_time.sleeps
    # initial 1 s doubling, plus up to 1 s of jitter on each
    assert 1.0 <= first <= 2.0
    assert 2.0 <= second <= 3.0
    assert 4.0 <= third <= 5.0


async def test_5xx_retries_are_bounded_and_then_fail(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    route = sendgrid_router.get(LISTS).respond(
        500, json={"errors": [{"message": "internal error"}]}
    )

    with pytest.raises(RetryableAPIError, match="answered 500: internal error"):
        await sendgrid_api.get_json("/v3/marketing/lists")

    assert route.call_count == 4
    assert len(fake_time.sleeps) == 3


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("connection refused"), httpx.ReadTimeout("read timed out")],
    ids=["connection-error", "timeout"],
)
async def test_connection_errors_and_timeouts_are_retried(
    sendgrid_api: SendGridClient,
    sendgrid_router: respx.Router,
    fake_time: FakeTime,
    failure: httpx.TransportError,
) -> None:
    route = sendgrid_router.get(LISTS).mock(
        side_effect=[failure, httpx.Response(200, json=ONE_LIST)]
    )

    assert await sendgrid_api.get_json("/v3/marketing/lists") == ONE_LIST
    assert route.call_count == 2
    assert len(fake_time.sleeps) == 1


async def test_401_is_auth_rejected_at_once(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    route = sendgrid_router.get(LISTS).respond(
        401,
        json={
            "errors": [
                {
                    "message": "The provided authorization grant is invalid, expired, or revoked",
                    "field": None,
                    "help": None,
                }
            ]
        },
    )

    with pytest.raises(AuthRejected) as caught:
        await sendgrid_api.get_json("/v3/marketing/lists")

    assert str(caught.value).startswith("SendGrid rejected the API key")
    assert "expired, or revoked" in caught.value.detail
    assert route.call_count == 1
    assert fake_time.sleeps == []


async def test_403_names_the_scope_the_endpoint_needs(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    route = sendgrid_router.get(f"{API}/v3/contactdb/lists").respond(
        403, json=error_body("access forbidden")
    )

    with pytest.raises(SendGridForbidden) as caught:
        await sendgrid_api.get_json("/v3/contactdb/lists")

    assert caught.value.requirement == (
        "the marketing_campaigns.read scope (Legacy Marketing Campaigns)"
    )
    assert "access forbidden" in str(caught.value)
    assert route.call_count == 1


async def test_404_and_other_4xx_are_not_retried(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    sendgrid_router.get(f"{API}/v3/contactdb/recipients").respond(404)
    bad = sendgrid_router.get(LISTS).respond(
        400, json=error_body("must be <= 1000", field="page_size")
    )

    with pytest.raises(SendGridNotFound):
        await sendgrid_api.get_json("/v3/contactdb/recipients")
    with pytest.raises(RequestRejected, match="400 to /v3/marketing/lists: must be <= 1000"):
        await sendgrid_api.get_json("/v3/marketing/lists", {"page_size": 5000})

    assert bad.call_count == 1
    assert fake_time.sleeps == []
