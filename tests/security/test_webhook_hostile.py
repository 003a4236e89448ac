"""Hostile and broken webhook input not covered by tests/test_webhook.py.

Already covered there (not repeated here): a JSON object instead of an array, malformed JSON,
non-object items, invalid UTF-8, 10,000-deep nesting (400, bytes kept in `rejected`); unknown
event type, missing `event`, an unparsable timestamp string (kept in `rejected`); a wrong token,
an unknown source and a token crossed between two sources (404); a body over the limit and a
gzip bomb (413); a missing signature, a signature from another key and one over another
event (403).

Here: replays outside WEBHOOK_TIMESTAMP_TOLERANCE, a signature over different bytes of the
same events, field values of the wrong type or out of range (each kept in `rejected` with its
reason, never failing the batch or a concurrent batch), lone surrogate escapes, a huge number
of tiny events, and unsupported or broken Content-Encoding. Every refusal stores nothing
except what the streaming issue sends to `rejected`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from ingest_service.app import create_app as create_ingest_app
from shared.event_parsing import ParsedBatch, parse_body
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.webhook_helpers import Signer, body_of, count, new_source, rows

pytestmark = pytest.mark.usefixtures("sendgrid")

TOLERANCE = timedelta(minutes=5)


def event(n: int, kind: str = "open", **extra: Any) -> dict[str, Any]:
    return {
        "email": f"user{n}@example.com",
        "event": kind,
        "timestamp": 1700000000 + n,
        "sg_event_id": f"hostile-{kind}-{n}",
        **extra,
    }


async def stored(app: FastAPI, schema: str) -> tuple[int, int]:
    """(events in every event table, rows in `rejected`)."""
    return (
        await count(app, f"SELECT count(*) FROM {schema}.activity"),
        await count(app, f"SELECT count(*) FROM {schema}.rejected"),
    )


def client_of(app: FastAPI) -> httpx.AsyncClient:
    # raise_app_exceptions=False: an unhandled exception is the 500 a real server would send,
    # so a test reports the status instead of erroring out.
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://ingest.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )


@pytest.fixture
async def hostile(ingest_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(ingest_app) as client:
        yield client


@pytest.fixture
async def tolerant_app(settings: Settings, sendgrid: respx.MockRouter) -> AsyncIterator[FastAPI]:
    app = create_ingest_app(settings.model_copy(update={"WEBHOOK_TIMESTAMP_TOLERANCE": TOLERANCE}))
    async with app.router.lifespan_context(app):
        yield app


# --- replays and signatures ---------------------------------------------------------------


async def test_replay_outside_the_tolerance_is_403_and_a_fresh_delivery_is_stored(
    tolerant_app: FastAPI,
) -> None:
    signer = Signer()
    async with client_of(tolerant_app) as client:
        source = await new_source(client, signer=signer)
        body = body_of([event(1)])
        now = int(time.time())
        limit = int(TOLERANCE.total_seconds())
        for label, moment in [
            ("replayed", now - limit - 60),
            ("from the future", now + limit + 60),
        ]:
            refused = await client.post(
                source["path"], content=body, headers=signer.headers(body, str(moment))
            )
            assert refused.status_code == 403, (label, refused.text)
            message = refused.json()["error"]["message"]
            assert message.startswith("signature check failed: timestamp is"), message
            assert "beyond the configured tolerance of 300 s" in message, message
        assert await stored(tolerant_app, source["schema"]) == (0, 0)

        fresh = signer.headers(body, str(now - 60))
        accepted = await client.post(source["path"], content=body, headers=fresh)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"stored": 1, "duplicates": 0, "rejected": 0}
        # The same delivery replayed inside the window is absorbed, not stored twice.
        again = await client.post(source["path"], content=body, headers=fresh)
        assert again.json() == {"stored": 0, "duplicates": 1, "rejected": 0}
    assert await stored(tolerant_app, source["schema"]) == (1, 0)


async def test_a_signature_over_other_bytes_of_the_same_events_is_refused(
    hostile: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    """The signature covers the raw bytes and the timestamp: re-serialized JSON, one more
    trailing CRLF, or a timestamp header from another delivery do not verify."""
    signer = Signer()
    source = await new_source(hostile, signer=signer)
    events = [event(1), event(2)]
    signed_body = body_of(events)
    headers = signer.headers(signed_body, "1700000100")
    variants = {
        "re-serialized": json.dumps(events).encode(),
        "compact": json.dumps(events, separators=(",", ":")).encode(),
        "trailing CRLF": signed_body + b"\r\n",
        "leading space": b" " + signed_body,
    }
    for label, body in variants.items():
        refused = await hostile.post(source["path"], content=body, headers=headers)
        assert refused.status_code == 403, (label, refused.text)
        assert "signature does not match" in refused.json()["error"]["message"], label
    swapped = {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1700000101"}
    refused = await hostile.post(source["path"], content=signed_body, headers=swapped)
    assert refused.status_code == 403
    assert await stored(ingest_app, source["schema"]) == (0, 0)
    # The genuine pair still verifies: the refusals above were about the bytes, not the key.
    good = await hostile.post(source["path"], content=signed_body, headers=headers)
    assert good.json() == {"stored": 2, "duplicates": 0, "rejected": 0}


# --- field values of the wrong type or out of range ---------------------------------------

# (event, what its `rejected` reason must name). Each case is sent with a good event beside it.
WRONG_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "email-object": (event(10, email={"user": "x"}), "email"),
    "event-number": (event(11) | {"event": 7}, "unknown event type 7"),
    "event-list": (event(12) | {"event": ["open"]}, "unknown event type ['open']"),
    "timestamp-object": (event(13, timestamp={"seconds": 1}), "timestamp"),
    "timestamp-boolean": (event(14, timestamp=True), "timestamp"),
    "sg_event_id-list": (event(15, sg_event_id=["x"]), "sg_event_id"),
    "category-object": (event(16, category={"a": 1}), "category"),
    "newsletter-list": (event(17, newsletter=[1]), "newsletter"),
    "asm_group_id-fraction": (event(18, asm_group_id=1.5), "asm_group_id"),
    # Out of range: beyond a BIGINT column, beyond any datetime.
    "asm_group_id-2^64": (event(19, asm_group_id=2**64), "asm_group_id"),
    "attempt-25-digits": (event(20, "deferred", attempt="9" * 25), "attempt"),
    "sg_user_id-minus-2^63-1": (event(21, sg_user_id=-(2**63) - 1), "sg_user_id"),
    "timestamp-10^30": (event(22, timestamp=10**30), "timestamp"),
    "timestamp-minus-10^30": (event(23, timestamp=-(10**30)), "timestamp"),
    "timestamp-1e300": (event(24, timestamp=1e300), "timestamp"),
    "timestamp-400-digit-string": (event(25, timestamp="9" * 400), "timestamp"),
}


@pytest.mark.parametrize("case", list(WRONG_VALUES))
async def test_a_wrong_or_out_of_range_value_goes_to_rejected_with_its_reason(
    hostile: httpx.AsyncClient, ingest_app: FastAPI, case: str
) -> None:
    bad, reason = WRONG_VALUES[case]
    source = await new_source(hostile)
    response = await hostile.post(source["path"], content=body_of([bad, event(1)]))
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 1, "duplicates": 0, "rejected": 1}
    [kept] = await rows(ingest_app, source["schema"], "rejected")
    assert reason in kept["reason"], kept["reason"]
    assert json.loads(kept["payload"]) == bad
    assert [r["id"] for r in await rows(ingest_app, source["schema"], "_open")] == [
        "hostile-open-1"
    ]


# NUL is valid JSON (\u0000) but PostgreSQL text and jsonb cannot hold it. The parser, on
# either backend, keeps an event holding one (in a value, a key, a category or the event
# type) in `rejected` with the reason, and the rest of the batch is stored.
NUL_VALUES: dict[str, dict[str, Any]] = {
    "in-email": event(30, email="a\u0000b@example.com"),
    "in-custom-arg": event(31, campaign="spring\u0000"),
    "in-a-key": event(32) | {"key\u0000": "v"},
    "in-a-category": event(33, category=["a\u0000"]),
    "in-the-event-type": event(34) | {"event": "op\u0000en"},
}


@pytest.mark.parametrize("case", list(NUL_VALUES))
async def test_an_event_holding_a_nul_character_is_rejected_and_the_batch_stored(
    hostile: httpx.AsyncClient, ingest_app: FastAPI, case: str
) -> None:
    bad = NUL_VALUES[case]
    source = await new_source(hostile)
    response = await hostile.post(source["path"], content=body_of([bad, event(1)]))
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 1, "duplicates": 0, "rejected": 1}
    [kept] = await rows(ingest_app, source["schema"], "rejected")
    assert kept["reason"] == "the event holds a NUL character (\\u0000), which cannot be stored"
    assert kept["event"] == "open"  # the NUL taken out of an event type that held one
    assert json.loads(kept["payload"]) == bad
    assert [r["id"] for r in await rows(ingest_app, source["schema"], "_open")] == [
        "hostile-open-1"
    ]


async def test_a_bad_event_does_not_fail_a_concurrent_batch_of_another_source(
    hostile: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    """Concurrent requests share one commit; one source's bad event must not make another
    source's batch answer 503 (which SendGrid would resend, failing again, for a day)."""
    first = await new_source(hostile, "First")
    second = await new_source(hostile, "Second")
    poisoned = body_of([event(1, asm_group_id=2**64), event(2, email="x\u0000@example.com")])
    clean = body_of([event(n) for n in range(10, 20)])
    answers = await asyncio.gather(
        *(hostile.post(first["path"], content=poisoned) for _ in range(3)),
        *(hostile.post(second["path"], content=clean) for _ in range(3)),
    )
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert await count(ingest_app, f"SELECT count(*) FROM {second['schema']}.activity") == 10


# --- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # orjson parses this one ...
        b'[{"event": "open", "email": "\\ud800", "timestamp": 1700000000}]',
        # ... and the stdlib this one (a 19+ digit number makes the parser switch).
        b'[{"event": "open", "email": "\\ud800", "timestamp": 1700000000,'
        b' "n": 123456789012345678901234567890}]',
        b'[{"event": "\\udc00", "n": 123456789012345678901234567890}]',
    ],
    ids=["orjson-path", "stdlib-path", "stdlib-path-event-type"],
)
async def test_a_lone_surrogate_escape_is_400_whichever_parser_reads_it(
    hostile: httpx.AsyncClient, ingest_app: FastAPI, body: bytes
) -> None:
    source = await new_source(hostile)
    response = await hostile.post(source["path"], content=body)
    assert response.status_code == 400, response.text
    assert "not valid JSON" in response.json()["error"]["message"]
    assert [r["payload"] for r in await rows(ingest_app, source["schema"], "rejected")] == [body]
    assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.activity") == 0


async def test_a_huge_number_of_tiny_events_is_refused_while_other_requests_are_served(
    hostile: httpx.AsyncClient, ingest_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body just under WEBHOOK_MAX_BODY_BYTES holding ~2.8 million `{}`: valid JSON, far
    more events than WEBHOOK_MAX_EVENTS. It is refused (413) with its bytes kept in
    `rejected`, and it is parsed off the event loop: while it is being parsed, the service
    answers another request."""
    source = await new_source(hostile)
    limit = ingest_app.state.settings.WEBHOOK_MAX_BODY_BYTES
    n = (limit - 2) // 3
    body = b"[" + b",".join([b"{}"] * n) + b"]"
    assert len(body) <= limit
    parsing, answered = threading.Event(), threading.Event()

    def parse_once_another_request_is_answered(*args: Any) -> ParsedBatch:
        parsing.set()
        # A guard against hanging forever, not a measure of speed.
        assert answered.wait(timeout=120), "no other request was answered during the parse"
        return parse_body(*args)

    monkeypatch.setattr("ingest_service.parsers.parse_body", parse_once_another_request_is_answered)
    huge = asyncio.create_task(hostile.post(source["path"], content=body))
    try:
        assert await asyncio.to_thread(parsing.wait, 120)
        assert (await hostile.get("/healthz")).status_code == 200
    finally:
        answered.set()

    response = await huge
    assert response.status_code == 413, response.text
    message = response.json()["error"]["message"]
    most = ingest_app.state.settings.WEBHOOK_MAX_EVENTS
    assert message == f"the body holds {n} events, more than the limit of {most}"
    [kept] = await rows(ingest_app, source["schema"], "rejected")
    assert kept["reason"] == f"body refused: {message}"
    assert kept["payload"] == body
    assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.activity") == 0


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("br", b"[]", "Content-Encoding 'br' is not supported"),
        ("deflate", b"[]", "Content-Encoding 'deflate' is not supported"),
        ("zstd", b"[]", "Content-Encoding 'zstd' is not supported"),
        ("gzip, gzip", gzip.compress(gzip.compress(b"[]")), "is not supported"),
        ("x-unknown", b"[]", "is not supported"),
        ("gzip", b'[{"event": "open"}]', "the body is not valid gzip"),
        ("gzip", gzip.compress(body_of([event(1)]))[:-12], "the gzip body is truncated"),
    ],
    ids=["br", "deflate", "zstd", "stacked", "unknown", "not-gzip", "truncated-gzip"],
)
async def test_unsupported_or_broken_content_encoding_is_400_and_stores_nothing(
    hostile: httpx.AsyncClient, ingest_app: FastAPI, encoding: str, body: bytes, message: str
) -> None:
    source = await new_source(hostile)
    response = await hostile.post(
        source["path"], content=body, headers={"Content-Encoding": encoding}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    assert message in response.json()["error"]["message"]
    assert await stored(ingest_app, source["schema"]) == (0, 0)
