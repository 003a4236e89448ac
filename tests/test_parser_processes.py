"""Webhook bodies parsed in parser processes (`INGEST_PARSERS`), as the service runs by
default: the same rows and the same errors as parsing in a thread, and a parser process
that dies costs only the requests it held (503, so SendGrid resends)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
from fastapi import FastAPI

from ingest_service.app import create_app as create_ingest_app
from ingest_service.parsers import ParserPool
from shared.event_parsing import parse_body
from shared.settings import Settings
from tests.conftest import admin_client
from tests.webhook_helpers import body_of, count, new_source, sample_events


@pytest.fixture
async def app_with_parsers(
    settings: Settings, sendgrid: respx.MockRouter
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_ingest_app(settings.model_copy(update={"INGEST_PARSERS": 1}))
    async with app.router.lifespan_context(app), admin_client(app) as client:
        yield app, client


def parser_pids(app: FastAPI) -> list[int]:
    parsers: ParserPool = app.state.parsers
    executor = parsers._executor
    assert executor is not None
    return [p.pid for p in (executor._processes or {}).values() if p.pid is not None]


async def test_events_parsed_in_a_parser_process_are_stored_as_the_parser_reads_them(
    app_with_parsers: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_with_parsers
    source = await new_source(client)
    body = body_of(sample_events())
    expected = parse_body(body, datetime.now(UTC))

    answer = await client.post(source["path"], content=body)

    assert answer.status_code == 200, answer.text
    assert parser_pids(app)
    assert os.getpid() not in parser_pids(app)
    assert answer.json()["stored"] == expected.event_count
    for table, records in expected.rows.items():
        stored = await count(app, f"SELECT count(*) FROM {source['schema']}.{table}")
        assert stored == len(records), table


async def test_a_body_refused_in_a_parser_process_gets_its_reason_and_is_kept(
    app_with_parsers: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_with_parsers
    source = await new_source(client)

    answer = await client.post(source["path"], content=json.dumps({"event": "open"}))

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "the body must be a JSON array of events, got a JSON object"
    )
    assert await count(app, f"SELECT count(*) FROM {source['schema']}.rejected") == 1


async def test_a_dead_parser_process_fails_its_request_with_503_and_a_new_pool_takes_over(
    app_with_parsers: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_with_parsers
    source = await new_source(client)
    for pid in parser_pids(app):
        os.kill(pid, signal.SIGKILL)

    lost = await client.post(source["path"], content=body_of(sample_events()[:3]))
    kept = await client.post(source["path"], content=body_of(sample_events()[:3]))

    assert lost.status_code == 503
    assert lost.headers["Retry-After"] == "5"
    assert "a parser process stopped" in lost.json()["error"]["message"]
    assert kept.status_code == 200, kept.text
    assert kept.json()["stored"] == 3
