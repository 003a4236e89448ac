"""The fake's suppression lists and unsubscribe groups behave as SendGrid documents them:
offset paging up to 500 with a short or empty last page, inclusive `start_time`/`end_time` on
`created`, the `email` prefix, one row per address per list, and groups with their members."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fake_sendgrid.state import FakeAccountState
from tests.fake_sendgrid.suppressions import DEFAULT_LIMIT, SUPPRESSION_KINDS

T = 1_767_225_600  # 2026-01-01T00:00:00Z


async def read_all(api: httpx.AsyncClient, kind: str, limit: int, **params: Any) -> list[list[Any]]:
    """Every page of list `kind`, as a reader does: until a page shorter than `limit`."""
    pages: list[list[Any]] = []
    while True:
        offset = sum(len(page) for page in pages)
        response = await api.get(
            f"/v3/suppression/{kind}", params={**params, "limit": limit, "offset": offset}
        )
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if len(pages[-1]) < limit:
            return pages


@pytest.mark.parametrize("kind", SUPPRESSION_KINDS)
async def test_pages_of_500_end_with_a_short_page(
    state: FakeAccountState, api: httpx.AsyncClient, kind: str
) -> None:
    for n in range(1001):
        # Out of order, with many rows in one second: the answer is still one stable order.
        state.add_suppression(kind, f"u{n:04d}@example.com", T + (n * 7919) % 300)

    pages = await read_all(api, kind, 500)

    assert [len(page) for page in pages] == [500, 500, 1]
    rows = [row for page in pages for row in page]
    assert len({row["email"] for row in rows}) == 1001
    assert rows == sorted(rows, key=lambda row: (row["created"], row["email"]))


async def test_a_list_of_exactly_two_pages_ends_with_an_empty_page(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    for n in range(1000):
        state.add_suppression("blocks", f"u{n}@example.com", T + n)

    pages = await read_all(api, "blocks", 500)

    assert [len(page) for page in pages] == [500, 500, 0]


async def test_without_limit_a_page_is_the_fakes_small_default(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    for n in range(DEFAULT_LIMIT + 1):
        state.add_suppression("bounces", f"u{n}@example.com", T + n)

    response = await api.get("/v3/suppression/bounces")

    assert len(response.json()) == DEFAULT_LIMIT < 500


async def test_start_and_end_time_are_both_inclusive(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    for offset, email in enumerate(["before", "first", "last", "after"]):
        state.add_suppression("spam_reports", f"{email}@example.com", T - 1 + offset)

    response = await api.get(
        "/v3/suppression/spam_reports", params={"start_time": T, "end_time": T + 1, "limit": 500}
    )
    only_start = await api.get(
        "/v3/suppression/spam_reports", params={"start_time": T + 1, "limit": 500}
    )

    assert [row["email"] for row in response.json()] == ["first@example.com", "last@example.com"]
    assert [row["email"] for row in only_start.json()] == [
        "last@example.com",
        "after@example.com",
    ]


async def test_the_email_parameter_is_a_prefix_with_a_wildcard(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    for email in ["sales@example.com", "salesdept@example.com", "presales@example.com"]:
        state.add_suppression("unsubscribes", email, T)

    prefix = await api.get("/v3/suppression/unsubscribes", params={"email": "sales"})
    anywhere = await api.get("/v3/suppression/unsubscribes", params={"email": "%sales"})

    assert [row["email"] for row in prefix.json()] == [
        "sales@example.com",
        "salesdept@example.com",
    ]
    assert len(anywhere.json()) == 3


async def test_each_list_has_its_own_fields(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    for kind in SUPPRESSION_KINDS:
        state.add_suppression(kind, "a@example.com", T)
    state.add_suppression("invalid_emails", "b@example.com", T + 1, reason="Invalid")

    fields = {
        kind: sorted((await api.get(f"/v3/suppression/{kind}")).json()[0])
        for kind in SUPPRESSION_KINDS
    }
    invalid = (await api.get("/v3/suppression/invalid_emails")).json()

    assert fields == {
        "bounces": ["created", "email", "reason", "status"],
        "blocks": ["created", "email", "reason", "status"],
        "spam_reports": ["created", "email", "ip"],
        "invalid_emails": ["created", "email", "reason"],
        "unsubscribes": ["created", "email"],
    }
    assert invalid[1] == {"created": T + 1, "email": "b@example.com", "reason": "Invalid"}


async def test_an_address_is_on_a_list_once_and_leaves_it_silently(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    state.add_suppression("bounces", "again@example.com", T)
    state.add_suppression("bounces", "gone@example.com", T)
    state.add_suppression("bounces", "again@example.com", T + 60, status="5.2.2")
    state.remove_suppression("bounces", "gone@example.com")

    rows = (await api.get("/v3/suppression/bounces")).json()

    assert [(row["email"], row["created"], row["status"]) for row in rows] == [
        ("again@example.com", T + 60, "5.2.2")
    ]


def test_an_unknown_list_is_refused(state: FakeAccountState) -> None:
    with pytest.raises(ValueError, match="unknown suppression list 'spam'"):
        state.add_suppression("spam", "a@example.com", T)


async def test_groups_and_their_members(state: FakeAccountState, api: httpx.AsyncClient) -> None:
    state.add_group(7, "Newsletters", ["a@example.com", "b@example.com"], is_default=True)
    state.add_group(8, "Offers", [], description="Offers we make")

    groups = (await api.get("/v3/asm/groups")).json()
    picked = (await api.get("/v3/asm/groups", params=[("id", "8")])).json()
    members = (await api.get("/v3/asm/groups/7/suppressions")).json()
    empty = (await api.get("/v3/asm/groups/8/suppressions")).json()
    state.group_members[7].append("c@example.com")
    counted = (await api.get("/v3/asm/groups")).json()[0]["unsubscribes"]
    state.remove_group(7)
    removed = await api.get("/v3/asm/groups/7/suppressions")

    assert groups == [
        {
            "id": 7,
            "name": "Newsletters",
            "description": "An Unsubscribe Group",
            "is_default": True,
            "unsubscribes": 2,
        },
        {
            "id": 8,
            "name": "Offers",
            "description": "Offers we make",
            "is_default": False,
            "unsubscribes": 0,
        },
    ]
    assert [group["id"] for group in picked] == [8]
    assert members == ["a@example.com", "b@example.com"]
    assert empty == []
    assert counted == 3
    assert removed.status_code == 404


def test_a_group_name_is_at_most_30_characters(state: FakeAccountState) -> None:
    with pytest.raises(ValueError, match="at most 30"):
        state.add_group(1, "x" * 31, [])
