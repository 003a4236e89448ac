"""Schemathesis fuzzing of both services' OpenAPI documents, in-process through ASGI.

Every operation of the ingest service (registry API, webhook, operations routes) and of the
sync service is called with generated data, valid and invalid (positive and negative modes),
once with the admin token and once without. The checks:

- `not_a_server_error`: no 5xx, whatever the input;
- status code, content type, headers and body conform to what the operation documents;
- negative data (outside the documented schema) is refused with a 4xx;
- every error body has the one shape the README promises: {"error": {"code", "message"}};
- without the token, every admin operation answers 401 and nothing else.

Half of the generated `source_id` (and webhook token) values are swapped for a real source's,
so GET/PATCH/DELETE, the sync API and the webhook are fuzzed past their 404 as well.

Generation is deterministic (Hypothesis `derandomize`, no example database): a failure
reproduces on every run. SendGrid is mocked with respx (/v3/scopes, and an empty Marketing
Campaigns account for the sync service), so POST /sources can succeed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import respx
import schemathesis
from fastapi import FastAPI
from schemathesis import BaseSchema, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingest_service.app import create_app as create_ingest_app
from shared.settings import Settings, load_settings
from sync_service.app import create_app as create_sync_app
from tests.conftest import ADMIN_TOKEN, SENDGRID_TEST_URL, api_key
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.served import served_in_thread

# Examples per operation test (Hypothesis max_examples). 17 ingest + 5 sync operations, with
# and without the token, the token runs on both backends: 66 tests, about 3,500 calls, about
# three minutes on 2 cores.
MAX_EXAMPLES = 50

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/webhooks/{source_id}/{token}"})

# Checks run on every response.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# Calls made per fuzz test; printed at the end of the module (visible with `pytest -s`).
calls: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report_calls() -> Iterator[None]:
    yield
    print("\nschemathesis calls:", ", ".join(f"{k}: {v}" for k, v in sorted(calls.items())))


def error_body_shape(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """README: 'Every error has one shape: {"error": {"code": ..., "message": ...}}'."""
    if response.status_code < 400:
        return None
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str), body
    assert isinstance(body["error"]["message"], str), body
    assert body["error"]["message"], body
    return True


def admin_needs_token(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Without the admin token, an admin operation answers 401, whatever else is wrong."""
    if case.operation.path in PUBLIC_PATHS or case.method != case.operation.method.upper():
        return None  # a public route, or a probe with a method the route does not have (405)
    assert response.status_code == 401, (
        f"{case.operation.label} answered {response.status_code} without the admin token: "
        f"{response.content[:300]!r}"
    )
    return True


def openapi_document(create_app: Callable[[Settings], FastAPI]) -> dict[str, Any]:
    """The service's OpenAPI document, from an app that is never started.

    Schemathesis' fixture-based loader (`schemathesis.pytest.from_fixture`) breaks on pytest
    9.2 (it sets `Node._nodeid`, now `Node._id`), so the schemas are loaded at import time and
    every call is sent to the test's own app with `app=`.
    """
    unused = load_settings(
        DATABASE_URL="postgresql+asyncpg://unused@127.0.0.1:9/unused",  # never connected
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY="unused-" + "x" * 32,
    )
    return create_app(unused).openapi()


# The source whose id (and webhook token) replaces half of the generated ones.
target: dict[str, str] = {"id": "", "token": ""}


def fuzz_schema(create_app: Callable[[Settings], FastAPI]) -> BaseSchema:
    schema = schemathesis.openapi.from_dict(openapi_document(create_app))
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        database="none",
        # The admin token is sent (or not) by each test itself, not generated.
        with_security_parameters=False,
        # Unknown query parameters are ignored, as HTTP APIs commonly do; not a finding.
        allow_extra_parameters=False,
    )

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any]
    ) -> st.SearchStrategy[dict[str, Any]]:
        if not isinstance(path_parameters, dict) or "source_id" not in path_parameters:
            return st.just(path_parameters)
        real = {**path_parameters, "source_id": target["id"]}
        if "token" in path_parameters:
            real["token"] = target["token"]
        return st.sampled_from([path_parameters, real])

    return schema


ingest_api = fuzz_schema(create_ingest_app)
sync_api = fuzz_schema(lambda settings: create_sync_app(settings, schedule=False))


def register_target(app: FastAPI) -> None:
    """A real source, created through the API under test (this also starts the app)."""
    created = (
        ingest_api["/sources"]["POST"]
        .Case(body={"name": "Fuzz Target", "api_key": api_key()}, headers=AUTH)
        .call(app=app)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    target.update(id=body["id"], token=body["webhook_url"].rsplit("/", 1)[1])


@pytest.fixture
def ingest_app_under_fuzz(settings: Settings, sendgrid: respx.MockRouter) -> Iterator[FastAPI]:
    # Schemathesis runs the app's lifespan on its own event loop from the first call on, and
    # its pytest plugin shuts it down at teardown, before the database fixtures go away.
    # The account's webhook settings API answers `POST /sources/{id}/webhook`; its test batch
    # is never delivered here, so the wait for it is kept short.
    FakeAccount(SENDGRID_TEST_URL).install(sendgrid)
    # The sync runs the ingest service relays (GET/POST /sources/{id}/syncs, the overview)
    # come from the real sync service, served on 127.0.0.1 in a thread of its own.
    sendgrid.route(host="127.0.0.1").pass_through()
    with served_in_thread(create_sync_app(settings, schedule=False)) as sync_url:
        app = create_ingest_app(
            settings.model_copy(
                update={"WEBHOOK_TEST_TIMEOUT": timedelta(milliseconds=50), "SYNC_URL": sync_url}
            )
        )
        register_target(app)
        yield app


@pytest.fixture
def sync_app_under_fuzz(settings: Settings, sendgrid: respx.MockRouter) -> FastAPI:
    # An empty Marketing Campaigns account, so a started sync finishes quickly and cleanly.
    FakeAccount(SENDGRID_TEST_URL).install(sendgrid)
    register_target(create_ingest_app(settings))
    return create_sync_app(settings, schedule=False)


# One app and one database per operation, shared by its examples: that is the point (state
# builds up across calls), so Hypothesis' warning about function-scoped fixtures is moot.
FIXTURES_SHARED = hypothesis.settings(
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)


def run(case: Case[Any], app: FastAPI, name: str, *, token: bool) -> None:
    calls[name] = calls.get(name, 0) + 1
    extra: list[Callable[..., bool | None]] = [error_body_shape]
    if not token:
        extra.append(admin_needs_token)
    case.call_and_validate(headers=AUTH if token else None, checks=[*CHECKS, *extra], app=app)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@ingest_api.parametrize()
@FIXTURES_SHARED
def test_ingest_api_with_admin_token(case: Case[Any], ingest_app_under_fuzz: FastAPI) -> None:
    run(case, ingest_app_under_fuzz, "ingest, token", token=True)


@pytest.mark.parametrize("backend", ["sqlite"])
@ingest_api.parametrize()
@FIXTURES_SHARED
def test_ingest_api_without_admin_token(case: Case[Any], ingest_app_under_fuzz: FastAPI) -> None:
    run(case, ingest_app_under_fuzz, "ingest, no token", token=False)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@sync_api.parametrize()
@FIXTURES_SHARED
def test_sync_api_with_admin_token(case: Case[Any], sync_app_under_fuzz: FastAPI) -> None:
    run(case, sync_app_under_fuzz, "sync, token", token=True)


@pytest.mark.parametrize("backend", ["sqlite"])
@sync_api.parametrize()
@FIXTURES_SHARED
def test_sync_api_without_admin_token(case: Case[Any], sync_app_under_fuzz: FastAPI) -> None:
    run(case, sync_app_under_fuzz, "sync, no token", token=False)
