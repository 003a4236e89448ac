"""Templates and Marketing Campaigns statistics are paged by `page_token`: the fake's
`_metadata` links chain through every page (keeping the query's other parameters), `prev`
appears after the first page, `count` is the whole list's; templates need `page_size` and
default to legacy ones; sender catalogues answer as their files say."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.fake_sendgrid.state import FakeAccountState
from tests.fake_sendgrid.templates import template_version


async def follow(api: httpx.AsyncClient, url: str, key: str) -> list[dict[str, Any]]:
    """Every page from `url` on, by `_metadata.next`, as a reader does."""
    pages: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = await api.get(next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        next_url = body["_metadata"].get("next")
        assert len(pages) < 100, "the chain of next links does not end"
    assert all(isinstance(page[key], list) for page in pages)
    return pages


def template_id(n: int) -> str:
    return str(uuid.UUID(int=n))


def add_templates(state: FakeAccountState, legacy: int, dynamic: int) -> None:
    for n in range(legacy + dynamic):
        generation = "legacy" if n < legacy else "dynamic"
        versions = [template_version(template_id(1000 + n), f"v of {n}")]
        state.add_template(template_id(n), f"template {n}", generation, versions)


async def test_templates_chain_by_page_token_keeping_the_generations(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    add_templates(state, legacy=2, dynamic=3)

    pages = await follow(api, "/v3/templates?generations=legacy,dynamic&page_size=2", "result")

    assert [len(page["result"]) for page in pages] == [2, 2, 1]
    ids = [t["id"] for page in pages for t in page["result"]]
    assert ids == [template_id(n) for n in range(5)]
    assert [page["_metadata"]["count"] for page in pages] == [5, 5, 5]
    assert "prev" not in pages[0]["_metadata"]
    assert pages[1]["_metadata"]["prev"] == pages[0]["_metadata"]["self"]
    assert pages[2]["_metadata"]["prev"] == pages[1]["_metadata"]["self"]
    assert "next" not in pages[2]["_metadata"]
    for page in pages:
        assert httpx.URL(page["_metadata"]["self"]).params["generations"] == "legacy,dynamic"
        assert httpx.URL(page["_metadata"]["self"]).host == "api.sendgrid.com"


async def test_a_full_last_page_of_200_has_no_next(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    add_templates(state, legacy=0, dynamic=400)

    pages = await follow(api, "/v3/templates?generations=dynamic&page_size=200", "result")

    assert [len(page["result"]) for page in pages] == [200, 200]


async def test_without_generations_only_legacy_templates_come_back(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    add_templates(state, legacy=1, dynamic=2)

    default = (await api.get("/v3/templates", params={"page_size": 10})).json()
    dynamic = (await api.get("/v3/templates?page_size=10&generations=dynamic")).json()

    assert [t["generation"] for t in default["result"]] == ["legacy"]
    assert default["_metadata"]["count"] == 1
    assert [t["generation"] for t in dynamic["result"]] == ["dynamic", "dynamic"]


async def test_a_listed_version_is_lean_and_the_template_has_it_whole(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    versions = [
        template_version(template_id(10), "old", active=0, html_content="<p>old</p>"),
        template_version(template_id(11), "new", test_data='{"name": "x"}'),
    ]
    state.add_template(
        template_id(1), "welcome", "dynamic", versions, updated_at="2026-03-01 08:00:00"
    )

    listed = (await api.get("/v3/templates?page_size=1&generations=dynamic")).json()["result"][0]
    whole = (await api.get(f"/v3/templates/{template_id(1)}")).json()

    assert [v["name"] for v in listed["versions"]] == ["old", "new"]
    assert all("html_content" not in v and "test_data" not in v for v in listed["versions"])
    assert whole["updated_at"] == "2026-03-01 08:00:00"
    assert whole["versions"][0]["html_content"] == "<p>old</p>"
    assert whole["versions"][1]["test_data"] == '{"name": "x"}'
    assert {v["template_id"] for v in whole["versions"]} == {template_id(1)}
    assert [v["active"] for v in whole["versions"]] == [0, 1]


async def test_a_token_past_a_list_that_shrank_is_an_empty_last_page(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    add_templates(state, legacy=4, dynamic=0)
    first = (await api.get("/v3/templates?page_size=2")).json()
    state.templates = state.templates[:1]

    last = (await api.get(first["_metadata"]["next"])).json()

    assert (last["result"], last["_metadata"]["count"]) == ([], 1)
    assert "next" not in last["_metadata"]


def test_a_template_has_at_most_one_active_version(state: FakeAccountState) -> None:
    versions = [template_version(template_id(n), f"v{n}", active=1) for n in (1, 2)]
    with pytest.raises(ValueError, match="only one version"):
        state.add_template(template_id(0), "t", "legacy", versions)


@pytest.mark.parametrize(
    ("path", "add", "ids_param"),
    [
        ("/v3/marketing/stats/singlesends", FakeAccountState.add_singlesend_stat, "singlesend_ids"),
        ("/v3/marketing/stats/automations", FakeAccountState.add_automation_stat, "automation_ids"),
    ],
)
async def test_marketing_stats_chain_by_page_token_in_pages_of_at_most_50(
    state: FakeAccountState, api: httpx.AsyncClient, path: str, add: Any, ids_param: str
) -> None:
    for n in range(120):
        add(state, template_id(n), requests=n)

    pages = await follow(api, f"{path}?page_size=50", "results")
    default = (await api.get(path)).json()
    picked = (await api.get(path, params={ids_param: f"{template_id(3)},{template_id(70)}"})).json()
    too_many = await api.get(path, params={ids_param: ",".join(template_id(n) for n in range(26))})

    assert [len(page["results"]) for page in pages] == [50, 50, 20]
    rows = [row for page in pages for row in page["results"]]
    assert [row["stats"]["requests"] for row in rows] == list(range(120))
    assert len(default["results"]) == 25
    assert default["_metadata"]["next"].endswith("page_size=25&page_token=25")
    assert [row["id"] for row in picked["results"]] == [template_id(3), template_id(70)]
    assert too_many.status_code == 400


async def test_one_single_send_has_a_row_per_variation_and_phase(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    send, variation = template_id(1), template_id(2)
    state.add_singlesend_stat(send, ab_variation=variation, ab_phase="test", opens=3)
    state.add_singlesend_stat(send, ab_variation=variation, ab_phase="send", opens=5)
    state.add_automation_stat(send, step_id=template_id(3), clicks=1)
    state.add_automation_stat(send, step_id=template_id(4), clicks=2)

    sends = (await api.get("/v3/marketing/stats/singlesends")).json()["results"]
    steps = (await api.get("/v3/marketing/stats/automations")).json()["results"]

    assert [(r["id"], r["ab_phase"], r["stats"]["opens"]) for r in sends] == [
        (send, "test", 3),
        (send, "send", 5),
    ]
    assert [(r["step_id"], r["stats"]["clicks"]) for r in steps] == [
        (template_id(3), 1),
        (template_id(4), 2),
    ]
    assert len(sends[0]["stats"]) == 12  # every metric, zero unless given


def test_only_marketing_metrics_are_accepted(state: FakeAccountState) -> None:
    with pytest.raises(ValueError, match="processed"):
        state.add_singlesend_stat(template_id(1), processed=3)


async def test_marketing_senders_come_back_whole(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    state.add_marketing_sender(1, "Orders", "orders@example.com", verified=False, updated_at=17)

    body = (await api.get("/v3/marketing/senders")).json()

    assert list(body) == ["results"]
    assert body["results"][0]["from"] == {"email": "orders@example.com", "name": "Orders"}
    assert (body["results"][0]["verified"], body["results"][0]["updated_at"]) == (False, 17)


async def test_verified_senders_page_by_last_seen_id(
    state: FakeAccountState, api: httpx.AsyncClient
) -> None:
    for sender_id in (30, 10, 20, 40, 50):
        state.add_verified_sender(sender_id, f"sender {sender_id}", f"s{sender_id}@example.com")

    pages: list[list[int]] = []
    last: int | None = None
    while True:
        params = {"limit": 2} if last is None else {"limit": 2, "lastSeenID": last}
        ids = [
            s["id"]
            for s in (await api.get("/v3/verified_senders", params=params)).json()["results"]
        ]
        pages.append(ids)
        if len(ids) < 2:
            break
        last = ids[-1]
    everything = (await api.get("/v3/verified_senders")).json()["results"]
    one = (await api.get("/v3/verified_senders", params={"id": 20})).json()["results"]

    assert pages == [[10, 20], [30, 40], [50]]
    assert [s["id"] for s in everything] == [10, 20, 30, 40, 50]
    assert [s["from_email"] for s in one] == ["s20@example.com"]
