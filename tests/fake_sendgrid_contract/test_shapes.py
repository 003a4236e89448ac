"""Every answer of the fake SendGrid's suppression, group, template, sender and statistics
endpoints, for a generated account, matches the response schema of SendGrid's OpenAPI file
for that path and status; so do its 400s, 403s and 404s (SendGrid's ErrorResponse)."""

from __future__ import annotations

import httpx
import pytest

from tests.fake_sendgrid.state import FakeAccountState
from tests.fake_sendgrid.suppressions import SUPPRESSION_KINDS
from tests.fake_sendgrid_contract.openapi import (
    assert_answers_as_documented,
    assert_error_response,
    response_errors,
)

# (OpenAPI file, path as the file spells it, a URL the fake answers 200 on).
DOCUMENTED = [
    *[
        ("tsg_suppressions_v3", f"/v3/suppression/{kind}", f"/v3/suppression/{kind}?limit=500")
        for kind in SUPPRESSION_KINDS
    ],
    ("tsg_suppressions_v3", "/v3/asm/groups", "/v3/asm/groups"),
    (
        "tsg_suppressions_v3",
        "/v3/asm/groups/{group_id}/suppressions",
        "/v3/asm/groups/103/suppressions",
    ),
    ("tsg_templates_v3", "/v3/templates", "/v3/templates?page_size=200"),
    ("tsg_templates_v3", "/v3/templates", "/v3/templates?page_size=7&generations=dynamic"),
    (
        "tsg_templates_v3",
        "/v3/templates",
        "/v3/templates?page_size=7&generations=legacy,dynamic&page_token=7",
    ),
    (
        "tsg_templates_v3",
        "/v3/templates/{template_id}",
        "/v3/templates/00000000-0000-0000-0000-000000009c42",
    ),
    ("tsg_mc_senders_v3", "/v3/marketing/senders", "/v3/marketing/senders"),
    ("tsg_verified_senders_v3", "/v3/verified_senders", "/v3/verified_senders"),
    ("tsg_verified_senders_v3", "/v3/verified_senders", "/v3/verified_senders?limit=1"),
    ("tsg_mc_stats_v3", "/v3/marketing/stats/singlesends", "/v3/marketing/stats/singlesends"),
    (
        "tsg_mc_stats_v3",
        "/v3/marketing/stats/singlesends",
        "/v3/marketing/stats/singlesends?page_size=3&page_token=3",
    ),
    ("tsg_mc_stats_v3", "/v3/marketing/stats/automations", "/v3/marketing/stats/automations"),
    (
        "tsg_mc_stats_v3",
        "/v3/marketing/stats/automations",
        "/v3/marketing/stats/automations?page_size=2",
    ),
    ("tsg_stats_v3", "/v3/stats", "/v3/stats?start_date=2026-01-01&aggregated_by=day"),
]


@pytest.mark.parametrize(("spec", "path", "url"), DOCUMENTED)
async def test_each_answer_matches_the_openapi_file(
    generated_api: httpx.AsyncClient, spec: str, path: str, url: str
) -> None:
    response = await generated_api.get(url)

    assert response.status_code == 200, response.text
    assert response.json(), f"{url} answered nothing: the check would prove little"
    assert_answers_as_documented(spec, path, response)


async def test_the_check_fails_on_an_answer_unlike_the_file(state: FakeAccountState) -> None:
    """The schemas do catch a wrong shape (so the test above can fail)."""
    url = "https://api.sendgrid.com/v3/x"
    wrong = [
        ("tsg_suppressions_v3", "/v3/suppression/blocks", [{"email": "a@example.com"}]),
        ("tsg_suppressions_v3", "/v3/asm/groups/{group_id}/suppressions", [{"email": "a@b"}]),
        ("tsg_templates_v3", "/v3/templates", {"result": [{"id": "short", "name": "t"}]}),
        ("tsg_mc_senders_v3", "/v3/marketing/senders", {"results": [{"id": 1}]}),
        ("tsg_verified_senders_v3", "/v3/verified_senders", {"results": [{"id": "1"}]}),
        ("tsg_mc_stats_v3", "/v3/marketing/stats/automations", {"results": [{"id": "x"}]}),
    ]
    for spec, path, body in wrong:
        response = httpx.Response(200, json=body, request=httpx.Request("GET", url))
        assert response_errors(spec, path, response), (spec, path, body)


@pytest.mark.parametrize(
    ("spec", "path", "query", "field"),
    [
        ("tsg_suppressions_v3", "/v3/suppression/bounces", "limit=501", "limit"),
        ("tsg_suppressions_v3", "/v3/suppression/blocks", "limit=0", "limit"),
        ("tsg_suppressions_v3", "/v3/suppression/spam_reports", "offset=-1", "offset"),
        ("tsg_suppressions_v3", "/v3/suppression/invalid_emails", "start_time=x", "start_time"),
        ("tsg_suppressions_v3", "/v3/suppression/unsubscribes", "end_time=1.5", "end_time"),
        ("tsg_templates_v3", "/v3/templates", "", "page_size"),
        ("tsg_templates_v3", "/v3/templates", "page_size=0", "page_size"),
        ("tsg_templates_v3", "/v3/templates", "page_size=201", "page_size"),
        ("tsg_templates_v3", "/v3/templates", "page_size=10&generations=modern", "generations"),
        ("tsg_templates_v3", "/v3/templates", "page_size=10&page_token=nonsense", "page_token"),
        ("tsg_mc_stats_v3", "/v3/marketing/stats/singlesends", "page_size=51", "page_size"),
        ("tsg_mc_stats_v3", "/v3/marketing/stats/automations", "page_size=51", "page_size"),
        ("tsg_mc_stats_v3", "/v3/marketing/stats/automations", "page_token=-5", "page_token"),
        ("tsg_verified_senders_v3", "/v3/verified_senders", "limit=none", "limit"),
        ("tsg_suppressions_v3", "/v3/asm/groups", "id=1&id=first", "id"),
        ("tsg_stats_v3", "/v3/stats", "aggregated_by=day", "start_date"),
        ("tsg_stats_v3", "/v3/stats", "start_date=2026-13-01", "start_date"),
    ],
)
async def test_a_refused_query_is_a_400_with_sendgrids_error_body(
    generated_api: httpx.AsyncClient, spec: str, path: str, query: str, field: str
) -> None:
    """Each 400 has the body the file documents for a 400 on that path (templates, stats), or
    SendGrid's ErrorResponse where it documents none, and names the parameter at fault."""
    response = await generated_api.get(f"{path}?{query}")

    assert_error_response(spec, path, response, 400)
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("spec", "path", "url"),
    [
        (
            "tsg_suppressions_v3",
            "/v3/asm/groups/{group_id}/suppressions",
            "/v3/asm/groups/999/suppressions",
        ),
        (
            "tsg_suppressions_v3",
            "/v3/asm/groups/{group_id}/suppressions",
            "/v3/asm/groups/not-a-number/suppressions",
        ),
        (
            "tsg_templates_v3",
            "/v3/templates/{template_id}",
            "/v3/templates/00000000-0000-0000-0000-00000000ffff",
        ),
    ],
)
async def test_an_unknown_object_is_a_404(
    generated_api: httpx.AsyncClient, spec: str, path: str, url: str
) -> None:
    assert_error_response(spec, path, await generated_api.get(url), 404)
