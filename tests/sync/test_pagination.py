"""Paginators: page tokens, offset/limit, single pages and legacy numbered pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from sync_service.client import SendGridClient
from sync_service.errors import OffHostLink, PaginationLoop, SendGridError
from sync_service.pagination import (
    Page,
    fetch_single_page,
    iterate_numbered_pages,
    iterate_offset_pages,
    iterate_token_pages,
)
from tests.fake_sendgrid.payloads import (
    API,
    legacy_campaign,
    legacy_recipient,
    marketing_list,
    segment_v2,
    token_page,
)

LISTS = f"{API}/v3/marketing/lists"


def list_ids(pages: list[Page]) -> list[str]:
    return [item["id"] for page in pages for item in page]


async def collect(pages: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in pages]


async def drain_into(sink: list[Page], pages: AsyncIterator[Page]) -> None:
    """Keep what arrived before a failure, so a test can check what was already yielded."""
    async for page in pages:
        sink.append(page)


async def test_follows_next_links_through_several_pages_of_lists(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    lists = [
        marketing_list(f"0c9b7a52-1111-4c1e-9a52-00000000000{i}", f"list {i}", i) for i in range(5)
    ]
    route = sendgrid_router.get(LISTS).mock(
        side_effect=[
            httpx.Response(
                200,
                json=token_page(
                    lists[:2],
                    self_url=f"{LISTS}?page_size=2&page_token=",
                    next_url=f"{LISTS}?page_size=2&page_token=Tk1",
                    count=5,
                ),
            ),
            httpx.Response(
                200,
                json=token_page(
                    lists[2:4],
                    self_url=f"{LISTS}?page_size=2&page_token=Tk1",
                    next_url=f"{LISTS}?page_size=2&page_token=Tk2",
                    count=5,
                ),
            ),
            httpx.Response(
                200,
                json=token_page(lists[4:], self_url=f"{LISTS}?page_size=2&page_token=Tk2", count=5),
            ),
        ]
    )

    pages = await collect(iterate_token_pages(sendgrid_api, "/v3/marketing/lists", page_size=2))

    assert [len(page) for page in pages] == [2, 2, 1]
    assert list_ids(pages) == [item["id"] for item in lists]
    sent = [dict(call.request.url.params) for call in route.calls]
    assert sent == [
        {"page_size": "2"},
        {"page_size": "2", "page_token": "Tk1"},
        {"page_size": "2", "page_token": "Tk2"},
    ]


async def test_a_repeated_page_token_fails_instead_of_looping(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    first = marketing_list("0c9b7a52-1111-4c1e-9a52-000000000001", "a", 1)
    second = marketing_list("0c9b7a52-1111-4c1e-9a52-000000000002", "b", 2)
    route = sendgrid_router.get(LISTS).mock(
        side_effect=[
            httpx.Response(
                200,
                json=token_page(
                    [first], self_url=f"{LISTS}?page_size=1", next_url=f"{LISTS}?page_token=AA"
                ),
            ),
            httpx.Response(
                200,
                json=token_page(
                    [second],
                    self_url=f"{LISTS}?page_token=AA",
                    next_url=f"{LISTS}?page_size=1&page_token=AA",
                ),
            ),
        ]
    )
    pages: list[Page] = []

    with pytest.raises(PaginationLoop, match="'AA'"):
        await drain_into(
            pages, iterate_token_pages(sendgrid_api, "/v3/marketing/lists", page_size=1)
        )

    assert list_ids(pages) == [first["id"], second["id"]]
    assert route.call_count == 2


async def test_a_next_link_back_to_the_first_page_fails(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    only = marketing_list("0c9b7a52-1111-4c1e-9a52-000000000001", "a", 1)
    route = sendgrid_router.get(LISTS).respond(
        200,
        json=token_page([only], self_url=f"{LISTS}?page_size=1", next_url=f"{LISTS}?page_size=1"),
    )

    with pytest.raises(PaginationLoop):
        await collect(iterate_token_pages(sendgrid_api, "/v3/marketing/lists", page_size=1))

    assert route.call_count == 1


async def test_an_off_host_next_link_is_refused_and_never_requested(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    sendgrid_router.get(LISTS).respond(
        200,
        json=token_page(
            [marketing_list("0c9b7a52-1111-4c1e-9a52-000000000001", "a", 1)],
            self_url=f"{LISTS}?page_size=1",
            next_url="https://a/DYEsTUDww9-",
        ),
    )
    elsewhere = sendgrid_router.get(host="a").respond(200, json=token_page([], self_url=""))

    with pytest.raises(OffHostLink, match=r"points to 'a', not https://api\.sendgrid\.com"):
        await collect(iterate_token_pages(sendgrid_api, "/v3/marketing/lists", page_size=1))

    assert elsewhere.call_count == 0


async def test_a_next_link_with_another_scheme_is_off_host(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    sendgrid_router.get(LISTS).respond(
        200,
        json=token_page([], self_url=LISTS, next_url="http://api.sendgrid.com/v3/marketing/lists"),
    )

    with pytest.raises(OffHostLink):
        await collect(iterate_token_pages(sendgrid_api, "/v3/marketing/lists"))


async def test_offset_paging_stops_on_a_short_page(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    campaigns = [legacy_campaign(986724 - i, f"Newsletter {i}", "Sent") for i in range(5)]
    route = sendgrid_router.get(f"{API}/v3/campaigns").mock(
        side_effect=[
            httpx.Response(200, json={"result": campaigns[0:2]}),
            httpx.Response(200, json={"result": campaigns[2:4]}),
            httpx.Response(200, json={"result": campaigns[4:]}),
        ]
    )

    pages = await collect(
        iterate_offset_pages(sendgrid_api, "/v3/campaigns", limit=2, items_key="result")
    )

    assert [item["id"] for page in pages for item in page] == [c["id"] for c in campaigns]
    offsets = [call.request.url.params["offset"] for call in route.calls]
    assert offsets == ["0", "2", "4"]


async def test_offset_paging_stops_on_an_empty_page(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    bounces = [
        {
            "created": 1443651125,
            "email": f"bounce{i}@example.com",
            "reason": "550",
            "status": "5.1.1",
        }
        for i in range(2)
    ]
    route = sendgrid_router.get(f"{API}/v3/suppression/bounces").mock(
        side_effect=[httpx.Response(200, json=bounces), httpx.Response(200, json=[])]
    )

    pages = await collect(iterate_offset_pages(sendgrid_api, "/v3/suppression/bounces", limit=2))

    assert pages == [bounces]
    assert route.call_count == 2


async def test_offset_paging_detects_a_server_that_ignores_offset(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    same = [legacy_campaign(1, "a", "Draft"), legacy_campaign(2, "b", "Draft")]
    route = sendgrid_router.get(f"{API}/v3/campaigns").respond(200, json={"result": same})

    with pytest.raises(PaginationLoop):
        await collect(
            iterate_offset_pages(sendgrid_api, "/v3/campaigns", limit=2, items_key="result")
        )

    assert route.call_count == 2


async def test_a_single_page_reads_segments_results(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    segments = [
        segment_v2("2f6dec81-43b9-4c67-a890-3a38cb63b54a", "engaged", 120, []),
        segment_v2(
            "dad84de3-bec4-4e04-b132-2cbfd4bb3789",
            "engaged on list",
            7,
            ["ca7a3796-e8a8-4029-9ccb-df8937940562"],
        ),
    ]
    sendgrid_router.get(f"{API}/v3/marketing/segments/2.0").respond(200, json={"results": segments})

    pages = await collect(
        fetch_single_page(sendgrid_api, "/v3/marketing/segments/2.0", items_key="results")
    )

    assert pages == [segments]


async def test_an_unexpected_body_shape_is_an_error_not_an_empty_page(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    # The spec's own (wrong) segments schema: one object instead of {"results": [...]}.
    sendgrid_router.get(f"{API}/v3/marketing/segments/2.0").respond(
        200, json=segment_v2("2f6dec81-43b9-4c67-a890-3a38cb63b54a", "engaged", 1, [])
    )

    with pytest.raises(SendGridError, match='"results" array'):
        await collect(
            fetch_single_page(sendgrid_api, "/v3/marketing/segments/2.0", items_key="results")
        )


async def test_legacy_recipients_page_until_a_404_reading_past_an_empty_page(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    page_one = [
        legacy_recipient("YUBh", "a@example.com"),
        legacy_recipient("YUBi", "b@example.com"),
    ]
    page_three = [legacy_recipient("YUBj", "c@example.com")]
    route = sendgrid_router.get(f"{API}/v3/contactdb/recipients").mock(
        side_effect=[
            httpx.Response(200, json={"recipients": page_one}),
            # a batch deletion left this page empty; more recipients follow
            httpx.Response(200, json={"recipients": []}),
            httpx.Response(200, json={"recipients": page_three}),
            httpx.Response(404, json={"errors": [{"field": None, "message": "No more pages"}]}),
        ]
    )

    pages = await collect(
        iterate_numbered_pages(
            sendgrid_api, "/v3/contactdb/recipients", items_key="recipients", page_size=2
        )
    )

    assert pages == [page_one, page_three]
    assert [call.request.url.params["page"] for call in route.calls] == ["1", "2", "3", "4"]
    assert {call.request.url.params["page_size"] for call in route.calls} == {"2"}


async def test_legacy_paging_stops_after_a_run_of_empty_pages(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    page_one = [legacy_recipient("YUBh", "a@example.com")]
    route = sendgrid_router.get(f"{API}/v3/contactdb/recipients").mock(
        side_effect=[httpx.Response(200, json={"recipients": page_one})]
        + [httpx.Response(200, json={"recipients": []})] * 3
    )

    pages = await collect(
        iterate_numbered_pages(
            sendgrid_api,
            "/v3/contactdb/recipients",
            items_key="recipients",
            empty_pages_before_end=3,
        )
    )

    assert pages == [page_one]
    assert route.call_count == 4


async def test_legacy_paging_detects_a_server_that_ignores_page(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    same = {"recipients": [legacy_recipient("YUBh", "a@example.com")]}
    route = sendgrid_router.get(f"{API}/v3/contactdb/recipients").respond(200, json=same)

    with pytest.raises(PaginationLoop):
        await collect(
            iterate_numbered_pages(sendgrid_api, "/v3/contactdb/recipients", items_key="recipients")
        )

    assert route.call_count == 2
