"""The webhook receiver: authentication, bad input, de-duplication and group commit."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ingest_service.app import create_app as create_ingest_app
from shared.settings import Settings
from tests.conftest import admin_client
from tests.webhook_helpers import Signer, body_of, count, new_source, rows

pytestmark = pytest.mark.usefixtures("sendgrid")


def event(n: int, kind: str = "delivered", **extra: Any) -> dict[str, Any]:
    return {
        "email": f"user{n}@example.com",
        "event": kind,
        "timestamp": 1700000000 + n,
        "sg_event_id": f"evt-{kind}-{n}",
        "sg_message_id": f"msg{n}.recvd-1",
        **extra,
    }


async def test_duplicates_in_one_batch_and_across_batches_are_stored_once(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    first = await ingest.post(source["path"], content=body_of([event(1), event(2), event(1)]))
    assert first.json() == {"stored": 2, "duplicates": 1, "rejected": 0}
    again = await ingest.post(source["path"], content=body_of([event(2), event(3)]))
    assert again.json() == {"stored": 1, "duplicates": 1, "rejected": 0}
    assert [r["id"] for r in await rows(ingest_app, source["schema"], "delivered")] == [
        "evt-delivered-1", "evt-delivered-2", "evt-delivered-3",
    ]  # fmt: skip
    summary = (await ingest.get(f"/sources/{source['id']}")).json()["webhook"]
    assert summary["duplicates_absorbed"] == 2
    assert summary["events_stored"] == 3
    assert summary["events_last_24h"]["delivered"] == 3
    assert summary["last_event_at"] is not None


async def test_last_event_at_is_when_the_last_stored_event_was_received(
    ingest: httpx.AsyncClient,
) -> None:
    source = await new_source(ingest)

    async def last_event_at() -> datetime | None:
        summary = (await ingest.get(f"/sources/{source['id']}")).json()["webhook"]
        return (
            None
            if summary["last_event_at"] is None
            else datetime.fromisoformat(summary["last_event_at"])
        )

    async def store_nothing(*more: bytes) -> None:
        """An empty body, refused events and a refused body (and `more`) store no event."""
        refused_events = [{"event": "teleported", "timestamp": 1}, event(9, timestamp="never")]
        bodies = (b"[]", body_of(refused_events), b'{"event": "delivered"}', *more)
        answers = [await ingest.post(source["path"], content=body) for body in bodies]
        assert [a.status_code for a in answers] == [200, 200, 400] + [200] * len(more)
        assert [a.json().get("stored", 0) for a in answers] == [0] * len(bodies)

    await store_nothing()
    assert await last_event_at() is None

    assert (await ingest.post(source["path"], content=body_of([event(1)]))).json()["stored"] == 1
    first = await last_event_at()
    assert first is not None

    await store_nothing(body_of([event(1)]))  # a duplicate stores nothing either
    assert await last_event_at() == first

    assert (await ingest.post(source["path"], content=body_of([event(2)]))).json()["stored"] == 1
    second = await last_event_at()
    assert second is not None
    assert second > first


async def test_events_without_sg_event_id_dedupe_on_content(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    plain = {"email": "a@example.com", "event": "open", "timestamp": 1700000000}
    reordered = dict(reversed(list(plain.items())))
    await ingest.post(source["path"], content=body_of([plain]))
    second = await ingest.post(source["path"], content=body_of([reordered]))
    assert second.json()["duplicates"] == 1
    assert len(await rows(ingest_app, source["schema"], "_open")) == 1


@pytest.mark.parametrize("writers", [1, 4])
async def test_concurrent_duplicate_deliveries_are_stored_exactly_once(
    settings: Settings, writers: int
) -> None:
    # With several lanes (PostgreSQL), each request's events are split by table across them.
    ingest_app = create_ingest_app(settings.model_copy(update={"INGEST_WRITERS": writers}))
    async with ingest_app.router.lifespan_context(ingest_app), admin_client(ingest_app) as ingest:
        await _send_every_batch_three_times_at_once(ingest, ingest_app)


async def _send_every_batch_three_times_at_once(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    kinds = ("delivered", "processed", "open", "click")
    batches = [
        [event(n, kinds[n % 4]) for n in range(start, start + 50)] for start in range(0, 200, 50)
    ]
    # Every batch sent three times, all at once: SendGrid's retries overlapping each other.
    requests = [body_of(batch) for batch in batches for _ in range(3)]
    answers = await asyncio.gather(*(ingest.post(source["path"], content=b) for b in requests))
    assert {a.status_code for a in answers} == {200}
    totals = [sum(a.json()[key] for a in answers) for key in ("stored", "duplicates")]
    assert totals == [200, 400]
    for table in ("delivered", "processed", "_open", "click"):
        assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.{table}") == 50
    assert (
        await count(ingest_app, f"SELECT count(DISTINCT id) FROM {source['schema']}.activity")
        == 200
    )


async def test_unknown_and_invalid_events_are_kept_in_rejected_and_the_rest_stored(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    batch = [
        event(1),
        {"event": "teleported", "email": "x@example.com", "timestamp": 1},
        {"email": "no-type@example.com", "timestamp": 1},
        event(2, "open", timestamp="yesterday"),
        event(3, "deferred", attempt="2", tls="1"),
    ]
    response = await ingest.post(source["path"], content=body_of(batch))
    assert response.status_code == 200
    assert response.json() == {"stored": 2, "duplicates": 0, "rejected": 3}
    rejected = {r["reason"] for r in await rows(ingest_app, source["schema"], "rejected")}
    assert "unknown event type 'teleported'" in rejected
    assert "the event has no 'event' field" in rejected
    assert any(r.startswith("invalid open event: timestamp") for r in rejected)
    deferred = (await rows(ingest_app, source["schema"], "deferred"))[0]
    assert (deferred["attempt"], deferred["tls"]) == (2, True)
    # Resending the same bad events keeps one copy of each.
    await ingest.post(source["path"], content=body_of(batch))
    assert len(await rows(ingest_app, source["schema"], "rejected")) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"event": "open"}', "must be a JSON array of events, got a JSON object"),
        (b"[{]", "the body is not valid JSON"),
        (b'[{"event": "open"}, 7]', "item 1 is a JSON number"),
        (b"[\xff\xfe]", "the body is not UTF-8"),
        (b"[" * 10000 + b"]" * 10000, "nested too deeply"),
    ],
    ids=["object", "malformed", "not-objects", "invalid-utf8", "deep-nesting"],
)
async def test_bad_bodies_get_400_and_their_bytes_are_kept(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, body: bytes, message: str
) -> None:
    source = await new_source(ingest)
    response = await ingest.post(source["path"], content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    kept = await rows(ingest_app, source["schema"], "rejected")
    assert [r["payload"] for r in kept] == [body]
    assert kept[0]["reason"].startswith("body refused:")


async def test_crlf_framing_and_gzip_bodies_are_accepted(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    framed = b"\r\n[\r\n" + json.dumps(event(1)).encode() + b"\r\n]\r\n"
    assert (await ingest.post(source["path"], content=framed)).json()["stored"] == 1
    zipped = gzip.compress(body_of([event(2)]))
    response = await ingest.post(
        source["path"], content=zipped, headers={"Content-Encoding": "gzip"}
    )
    assert response.json()["stored"] == 1
    assert len(await rows(ingest_app, source["schema"], "delivered")) == 2


async def test_wrong_token_and_unknown_source_are_404(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    other = await new_source(ingest, "Other")
    wrong_token = source["path"].rsplit("/", 1)[0] + "/" + "A" * 43
    crossed = f"/webhooks/{source['id']}/" + other["path"].rsplit("/", 1)[1]
    for path in (wrong_token, crossed, "/webhooks/nope/" + "A" * 43):
        response = await ingest.post(path, content=body_of([event(1)]))
        assert response.status_code == 404
        assert "no webhook at this URL" in response.json()["error"]["message"]
    assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.activity") == 0


async def test_body_over_the_limit_is_413_also_after_decompression(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    limit = ingest_app.state.settings.WEBHOOK_MAX_BODY_BYTES
    big = await ingest.post(source["path"], content=b" " * (limit + 1) + b"[]")
    assert big.status_code == 413
    bomb = gzip.compress(b"[" + b" " * (limit * 4) + b"]")
    assert len(bomb) < limit
    exploded = await ingest.post(source["path"], content=bomb, headers={"Content-Encoding": "gzip"})
    assert exploded.status_code == 413
    assert "decompressed body is larger" in exploded.json()["error"]["message"]
    assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.rejected") == 0


async def test_signed_webhook_accepts_valid_and_refuses_forged(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    signer = Signer()
    source = await new_source(ingest, signer=signer)
    body = body_of([event(1)])
    good = await ingest.post(source["path"], content=body, headers=signer.headers(body))
    assert good.status_code == 200
    assert good.json()["stored"] == 1
    cases = {
        "missing": {},
        "other body": signer.headers(body_of([event(2)])),
        "other key": Signer().headers(body),
    }
    for name, headers in cases.items():
        forged = await ingest.post(source["path"], content=body_of([event(3)]), headers=headers)
        assert forged.status_code == 403, name
        assert forged.json()["error"]["message"].startswith("signature check failed:"), name
    assert (
        "missing X-Twilio-Email-Event-Webhook-Signature"
        in (await ingest.post(source["path"], content=body)).json()["error"]["message"]
    )
    # A refused request stores nothing, not even in `rejected`.
    assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.activity") == 1
    assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.rejected") == 0


async def test_an_overloaded_receiver_answers_503_at_once_and_stores_on_resend(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = await new_source(ingest)
    writer = ingest_app.state.writer
    settings = ingest_app.state.settings.model_copy(update={"INGEST_MAX_IN_FLIGHT": 1})
    monkeypatch.setattr(ingest_app.state, "settings", settings)
    writing, release = asyncio.Event(), asyncio.Event()
    write = writer._write

    async def slow_write(*args: Any, **kwargs: Any) -> None:
        writing.set()
        await release.wait()  # the database is slow: the backlog builds up
        await write(*args, **kwargs)

    monkeypatch.setattr(writer, "_write", slow_write)
    first = asyncio.create_task(ingest.post(source["path"], content=body_of([event(1), event(2)])))
    await asyncio.wait_for(writing.wait(), 10)
    shed = await ingest.post(source["path"], content=body_of([event(3)]))
    assert shed.status_code == 503
    assert shed.headers["Retry-After"] == "5"
    assert "overloaded (1 requests in progress, 2 events waiting" in shed.json()["error"]["message"]
    release.set()
    assert (await first).json()["stored"] == 2
    assert writer.pending_events == 0
    assert ingest_app.state.admission.in_flight == 0
    resent = await ingest.post(source["path"], content=body_of([event(3)]))
    assert resent.json()["stored"] == 1
    assert len(await rows(ingest_app, source["schema"], "delivered")) == 3
