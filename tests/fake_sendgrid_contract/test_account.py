"""What a test switches and reads on the fake account for the new endpoints: a path in
`forbidden` answers 403 alone, `queries` records every request's query, the respx routes
reach every new path, and `generated_account` fills every collection the same on every run."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SENDGRID_TEST_URL
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.fake_sendgrid.state import FakeAccountState, generated_account
from tests.fake_sendgrid.suppressions import SUPPRESSION_KINDS
from tests.fake_sendgrid_contract.conftest import client_of
from tests.fake_sendgrid_contract.openapi import assert_error_response

# (OpenAPI file, path as the file spells it, the path asked).
NEW_PATHS = [
    *[
        ("tsg_suppressions_v3", f"/v3/suppression/{kind}", f"/v3/suppression/{kind}")
        for kind in SUPPRESSION_KINDS
    ],
    ("tsg_suppressions_v3", "/v3/asm/groups", "/v3/asm/groups"),
    (
        "tsg_suppressions_v3",
        "/v3/asm/groups/{group_id}/suppressions",
        "/v3/asm/groups/100/suppressions",
    ),
    ("tsg_templates_v3", "/v3/templates", "/v3/templates?page_size=10"),
    (
        "tsg_templates_v3",
        "/v3/templates/{template_id}",
        "/v3/templates/00000000-0000-0000-0000-000000009c40",
    ),
    ("tsg_mc_senders_v3", "/v3/marketing/senders", "/v3/marketing/senders"),
    ("tsg_verified_senders_v3", "/v3/verified_senders", "/v3/verified_senders"),
    ("tsg_mc_stats_v3", "/v3/marketing/stats/singlesends", "/v3/marketing/stats/singlesends"),
    ("tsg_mc_stats_v3", "/v3/marketing/stats/automations", "/v3/marketing/stats/automations"),
    # What the daily reconciliation reads (a key without stats.read: 403).
    ("tsg_stats_v3", "/v3/stats", "/v3/stats?start_date=2026-01-01&aggregated_by=day"),
]


@pytest.mark.parametrize(("spec", "path", "asked"), NEW_PATHS)
async def test_a_forbidden_path_answers_403_and_the_others_still_answer(
    spec: str, path: str, asked: str
) -> None:
    state = generated_account(contacts=10)
    state.forbidden.add(httpx.URL(asked).path)

    async with client_of(state) as api:
        refused = await api.get(asked)
        others = [await api.get(other) for _, _, other in NEW_PATHS if other != asked]

    assert_error_response(spec, path, refused, 403)
    assert refused.headers["X-RateLimit-Remaining"]
    assert [r.status_code for r in others] == [200] * (len(NEW_PATHS) - 1)


async def test_every_request_and_its_query_is_recorded(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    state.forbidden.add("/v3/suppression/blocks")

    await api.get("/v3/suppression/bounces", params={"start_time": 1767225600, "limit": 500})
    await api.get("/v3/suppression/bounces?start_time=1767225600&limit=500&offset=500")
    await api.get("/v3/suppression/blocks?limit=500")
    await api.get("/v3/templates?generations=legacy,dynamic&page_size=200")

    assert state.queries_to("/v3/suppression/bounces") == [
        {"start_time": "1767225600", "limit": "500"},
        {"start_time": "1767225600", "limit": "500", "offset": "500"},
    ]
    assert state.queries == [
        ("/v3/suppression/bounces", {"start_time": "1767225600", "limit": "500"}),
        ("/v3/suppression/bounces", {"start_time": "1767225600", "limit": "500", "offset": "500"}),
        ("/v3/suppression/blocks", {"limit": "500"}),  # answered 403, still asked
        ("/v3/templates", {"generations": "legacy,dynamic", "page_size": "200"}),
    ]


async def test_the_respx_routes_reach_every_new_path(account: FakeAccount) -> None:
    """The sync tests' way in: the product's own httpx client, routed by respx."""
    account.add_suppression("bounces", "a@example.com", 1767225600)
    account.add_group(5, "news", ["b@example.com"])
    account.add_template("00000000-0000-0000-0000-000000000001", "t", "legacy")
    account.add_marketing_sender(1, "s", "s@example.com")
    account.add_verified_sender(2, "v", "v@example.com")
    account.add_singlesend_stat("00000000-0000-0000-0000-000000000002")
    account.add_automation_stat("00000000-0000-0000-0000-000000000003")
    expected_lengths = {
        "/v3/suppression/bounces": 1,
        "/v3/suppression/blocks": 0,
        "/v3/asm/groups": 1,
        "/v3/asm/groups/5/suppressions": 1,
        "/v3/templates?page_size=10": 1,
        "/v3/marketing/senders": 1,
        "/v3/verified_senders": 1,
        "/v3/marketing/stats/singlesends": 1,
        "/v3/marketing/stats/automations": 1,
    }

    async with httpx.AsyncClient(base_url=SENDGRID_TEST_URL) as http:
        answers = {url: await http.get(url) for url in expected_lengths}
        template = await http.get("/v3/templates/00000000-0000-0000-0000-000000000001")

    lengths = {}
    for url, response in answers.items():
        body = response.json()
        listed = body if isinstance(body, list) else body.get("result", body.get("results"))
        lengths[url] = len(listed)
    assert lengths == expected_lengths
    assert template.json()["name"] == "t"


def test_a_generated_account_fills_every_collection_the_same_every_time() -> None:
    first, again = generated_account(contacts=10), generated_account(contacts=10)

    assert {kind: len(rows) for kind, rows in first.suppressions.items()} == {
        kind: 500 for kind in SUPPRESSION_KINDS
    }
    assert len(first.suppression_groups) == 12
    assert sum(len(members) for members in first.group_members.values()) == 450
    assert len(first.templates) == 30
    assert {t["generation"] for t in first.templates} == {"legacy", "dynamic"}
    assert sum(len(t["versions"]) for t in first.templates) == 60
    assert (len(first.marketing_senders), len(first.verified_senders)) == (3, 3)
    assert [row["id"] for row in first.singlesend_stats] == [s["id"] for s in first.single_sends]
    assert len(first.automation_stats) == 5
    assert len(first.daily_stats) == 30
    for name in (
        "suppressions",
        "suppression_groups",
        "group_members",
        "templates",
        "marketing_senders",
        "verified_senders",
        "singlesend_stats",
        "automation_stats",
        "daily_stats",
    ):
        assert getattr(first, name) == getattr(again, name), name


def test_a_generated_account_takes_every_earlier_argument_and_sizes_the_new_ones() -> None:
    small = generated_account(
        contacts=5,
        lists=2,
        segments=1,
        single_sends=1,
        export_files=1,
        rate_limit_every=0,
        polls_before_ready=0,
        suppressions=7,
        groups=1,
        templates=2,
        senders=1,
        automations=0,
        stats_days=0,
    )

    assert sum(len(rows) for rows in small.suppressions.values()) == 7
    assert (len(small.suppression_groups), len(small.templates)) == (1, 2)
    assert (small.automation_stats, small.daily_stats) == ([], {})


def test_an_empty_account_has_every_collection_empty() -> None:
    empty = FakeAccountState()

    assert empty.suppressions == {kind: [] for kind in SUPPRESSION_KINDS}
    for name in ("suppression_groups", "templates", "marketing_senders", "verified_senders"):
        assert getattr(empty, name) == []
    assert (empty.group_members, empty.queries) == ({}, [])
