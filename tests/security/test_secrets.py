"""Secrets and access: the admin token, API keys at rest and in logs, webhook tokens.

Already covered elsewhere (not repeated): tests/test_sources_api.py checks GET/POST /sources
without a token and with "nope" (401), and that the `sources` table holds no plain key;
tests/sync/test_syncs_api.py checks the sync API without a token; tests/test_webhook.py
checks a wrong token and a token crossed between two sources (404).

Here: every admin route of both services, enumerated from the apps, against missing, wrong
and near-miss tokens (a token differing in its last character, a prefix, an extension...),
which also proves the comparison is exact on every byte; the token checked before the body
is read; every table of the database (and, on SQLite, every byte of its files) free of API
keys, webhook tokens, the admin token and SECRET_KEY; every log line of a full flow at DEBUG
free of the same; webhook tokens of at least 128 random bits, none opening another's URL.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.engine import make_url

from shared.crypto import fingerprint
from shared.db import create_engine
from shared.logs import configure_logging
from shared.settings import Settings
from sync_service.app import create_app as create_sync_app
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.conftest import ADMIN_TOKEN, SENDGRID_TEST_URL, api_key
from tests.fake_sendgrid.contacts import Contact
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.webhook_helpers import Signer, body_of, count

PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc"}
PUBLIC_PATHS |= {"/openapi.json"}


def client_of(app: FastAPI, base_url: str, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url=base_url,
        headers=headers,
    )


@pytest.fixture
async def sync_app(settings: Settings, sendgrid: respx.MockRouter) -> AsyncIterator[FastAPI]:
    FakeAccount(SENDGRID_TEST_URL).install(sendgrid)
    app = create_sync_app(settings, schedule=False)
    async with app.router.lifespan_context(app):
        yield app


async def register(
    client: httpx.AsyncClient, name: str, signer: Signer | None = None, key: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": name, "api_key": key or api_key()}
    if signer is not None:
        payload["webhook_verification_key"] = signer.verification_key
    response = await client.post("/sources", json=payload)
    assert response.status_code == 201, response.text
    source: dict[str, Any] = response.json()
    source["api_key"] = payload["api_key"]
    source["token"] = source["webhook_url"].rsplit("/", 1)[1]
    source["path"] = source["webhook_url"].removeprefix("http://ingest.test")
    return source


# --- the admin token ------------------------------------------------------------------------


def admin_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route behind the admin token, found by walking the app."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI >= 0.16x
            if included is not None:
                walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute):
                found.update((method, prefix + route.path) for method in route.methods or ())

    walk(app.routes, "")
    admin = {
        (method, path)
        for method, path in found
        if path not in PUBLIC_PATHS and not path.startswith("/webhooks/")
    }
    # The walk must see at least every operation the OpenAPI document shows.
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path not in PUBLIC_PATHS and not path.startswith("/webhooks/")
    }
    assert documented <= admin, documented - admin
    return admin


def wrong_authorizations() -> dict[str, dict[str, Any]]:
    last = ADMIN_TOKEN[-1]
    return {
        "missing": {},
        "other token": {"Authorization": "Bearer " + "y" * len(ADMIN_TOKEN)},
        "last character differs": {
            "Authorization": "Bearer " + ADMIN_TOKEN[:-1] + ("y" if last != "y" else "z")
        },
        "first character differs": {"Authorization": "Bearer Z" + ADMIN_TOKEN[1:]},
        "prefix": {"Authorization": "Bearer " + ADMIN_TOKEN[:-1]},
        "half": {"Authorization": "Bearer " + ADMIN_TOKEN[: len(ADMIN_TOKEN) // 2]},
        "extended": {"Authorization": "Bearer " + ADMIN_TOKEN + "x"},
        "upper case": {"Authorization": "Bearer " + ADMIN_TOKEN.upper()},
        "no scheme": {"Authorization": ADMIN_TOKEN},
        "basic scheme": {"Authorization": "Basic " + ADMIN_TOKEN},
        "empty bearer": {"Authorization": "Bearer "},
        "non-ascii": {"Authorization": b"Bearer " + ADMIN_TOKEN[:-1].encode() + b"\xe9"},
        "in a query": {"params": {"token": ADMIN_TOKEN, "access_token": ADMIN_TOKEN}},
    }


async def test_every_admin_route_refuses_a_missing_wrong_or_near_miss_token(
    ingest_app: FastAPI, sync_app: FastAPI, sendgrid: respx.MockRouter
) -> None:
    async with client_of(ingest_app, "http://ingest.test") as admin:
        source = await register(admin, "SendGrid")
    scopes_calls = sendgrid.calls.call_count
    bodies = {
        ("POST", "/sources"): {"name": "Intruder", "api_key": api_key()},
        ("PATCH", "/sources/{source_id}"): {"name": "Renamed", "api_key": api_key()},
    }
    tried: dict[str, set[tuple[str, str]]] = {}
    for app, base in [(ingest_app, "http://ingest.test"), (sync_app, "http://sync.test")]:
        operations = admin_operations(app)
        tried[base] = operations
        async with client_of(app, base, token=None) as anonymous:
            for method, template in sorted(operations):
                path = template.replace("{source_id}", source["id"])
                for label, extra in wrong_authorizations().items():
                    headers = {k: v for k, v in extra.items() if k != "params"}
                    response = await anonymous.request(
                        method,
                        path,
                        headers=headers,
                        params={"drop_data": "true", **extra.get("params", {})},
                        json=bodies.get((method, template)),
                    )
                    where = f"{method} {template} with {label}"
                    assert response.status_code == 401, (where, response.text)
                    error = response.json()["error"]
                    assert error["code"] == "unauthorized", where
                    assert ADMIN_TOKEN not in response.text, where
    assert {op[1] for ops in tried.values() for op in ops} >= {
        "/sources", "/sources/{source_id}", "/sources/{source_id}/syncs",
    }  # fmt: skip
    # Nothing happened: no source added, renamed, rotated or removed, no sync started, and
    # no key was sent to SendGrid for checking.
    assert sendgrid.calls.call_count == scopes_calls
    async with client_of(ingest_app, "http://ingest.test") as admin:
        [after] = (await admin.get("/sources")).json()["sources"]
    assert (after["name"], after["api_key_fingerprint"]) == (
        "SendGrid",
        source["api_key_fingerprint"],
    )
    async with client_of(sync_app, "http://sync.test") as admin:
        runs = await admin.get(f"/sources/{source['id']}/syncs")
    assert (runs.status_code, runs.json()) == (200, {"runs": []})


async def test_the_admin_token_is_checked_before_the_body_is_read(ingest_app: FastAPI) -> None:
    """Without the token, the answer is 401 whatever the body, and the body is not even read:
    an anonymous caller learns nothing about it and cannot make the service buffer it."""
    read: list[int] = []

    async def body(chunk: bytes) -> AsyncIterator[bytes]:
        read.append(len(chunk))
        yield chunk

    async with client_of(ingest_app, "http://ingest.test", token=None) as anonymous:
        for method, path, content in [
            ("POST", "/sources", b"{not json"),
            ("POST", "/sources", b"\xff\xfe"),
            ("POST", "/sources", b"[" * 100_000),
            ("PATCH", "/sources/any", b'{"name": 5}'),
        ]:
            response = await anonymous.request(
                method,
                path,
                content=body(content),
                headers={"Content-Type": "application/json", "Authorization": "Bearer nope"},
            )
            assert response.status_code == 401, (method, path, content[:10], response.text)
    assert read == [], "the body of an unauthenticated request was read"


# --- secrets at rest ------------------------------------------------------------------------


async def no_sleep(seconds: float) -> None:
    return None


async def full_flow(
    ingest_app: FastAPI, sync_app: FastAPI, settings: Settings, sendgrid: respx.MockRouter
) -> dict[str, str]:
    """Register, rotate, receive events, read, sync, fail to authenticate: everything that
    handles a secret. Returns every secret involved, by name."""
    account = FakeAccount(SENDGRID_TEST_URL)
    account.install(sendgrid)
    account.add_list("ca7a3796-e8a8-4029-9ccb-df8937940562", "Newsletter", 2)
    account.contacts = [
        Contact("c1", "ann@example.com", "Ann"),
        Contact("c2", "bob@example.com", "Bob"),
    ]
    signer = Signer()
    first_key, rotated_key, second_key = api_key(), api_key(), api_key()
    async with client_of(ingest_app, "http://ingest.test") as admin:
        signed = await register(admin, "SendGrid", signer=signer, key=first_key)
        plain = await register(admin, "Marketing", key=second_key)
        body = body_of([{"event": "open", "email": "ann@example.com", "timestamp": 1700000000}])
        answer = await admin.post(signed["path"], content=body, headers=signer.headers(body))
        assert answer.status_code == 200, answer.text
        answer = await admin.post(plain["path"], content=body)
        assert answer.status_code == 200, answer.text
        for path in (signed["path"] + "x", f"/webhooks/{signed['id']}/{plain['token']}"):
            assert (await admin.post(path, content=body)).status_code == 404
        assert (await admin.get(f"/sources/{signed['id']}")).status_code == 200
        assert (await admin.get("/sources")).status_code == 200
        rotated = await admin.patch(f"/sources/{signed['id']}", json={"api_key": rotated_key})
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["api_key_fingerprint"] == fingerprint(rotated_key)
    async with client_of(ingest_app, "http://ingest.test", token=ADMIN_TOKEN[:-1]) as wrong:
        assert (await wrong.get("/sources")).status_code == 401

    engine = create_engine(settings.DATABASE_URL)
    try:
        async with httpx.AsyncClient() as http:
            deps = SyncDependencies(engine, http, settings, sleep=no_sleep)
            outcome = await SyncService(deps).run(signed["id"], "manual")
    finally:
        await engine.dispose()
    assert outcome is not None
    assert outcome.status == "succeeded", outcome
    async with client_of(sync_app, "http://sync.test") as admin:
        assert (await admin.get(f"/sources/{signed['id']}/syncs")).status_code == 200
    # The key went to SendGrid and nowhere else (not to the export download host).
    for call in sendgrid.calls:
        if call.request.url.host != "sendgrid.test":
            assert "authorization" not in call.request.headers, call.request.url
    return {
        "first API key": first_key,
        "rotated API key": rotated_key,
        "second API key": second_key,
        "secret part of the API key": rotated_key.rsplit(".", 1)[1],
        "signed source's webhook token": signed["token"],
        "plain source's webhook token": plain["token"],
        "admin token": ADMIN_TOKEN,
        "SECRET_KEY": settings.secret_key,
    }


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


async def every_table(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table and view: control tables and every source schema."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            names = [
                f'"{schema}"."{table}"'
                for schema, table in await connection.execute(
                    sa.text(
                        "SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                    )
                )
            ]
        else:
            names = []
            for _, database, _ in (await connection.exec_driver_sql("PRAGMA database_list")).all():
                listing = await connection.exec_driver_sql(
                    f"SELECT name FROM \"{database}\".sqlite_master WHERE type IN ('table', 'view')"
                )
                names += [f'"{database}"."{name}"' for (name,) in listing]
        return {
            name: [tuple(row) for row in await connection.exec_driver_sql(f"SELECT * FROM {name}")]
            for name in names
        }


def as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


async def test_the_database_holds_no_secret_in_plain_text(
    ingest_app: FastAPI, sync_app: FastAPI, settings: Settings, sendgrid: respx.MockRouter
) -> None:
    secrets = await full_flow(ingest_app, sync_app, settings, sendgrid)
    engine = ingest_app.state.engine
    for schema in ("sendgrid", "marketing"):  # SQLite: make sure both files are attached
        await count(ingest_app, f"SELECT count(*) FROM {schema}.activity")
    tables = await every_table(engine)
    text = "\n".join(as_text(value) for rows in tables.values() for row in rows for value in row)
    assert leaks(text, secrets) == []
    # The scan did read the rows holding the secrets: their fingerprint and ciphertext.
    assert fingerprint(secrets["rotated API key"]) in text
    assert len(re.findall(r"gAAAAA[\w-]{40,}", text)) >= 4  # Fernet: keys and tokens
    assert any(name.endswith('."rejected"') for name in tables)
    assert sum(1 for name in tables if name.endswith('."activity"')) == 2
    if engine.dialect.name == "sqlite":
        # Every byte of every file, WAL included: freed pages keep old values too.
        directory = Path(make_url(settings.DATABASE_URL).database or "").parent
        files = sorted(directory.glob("*.db*"))
        assert len(files) >= 3
        for path in files:
            data = path.read_bytes().decode("latin-1")
            assert leaks(data, secrets) == [], path.name


# --- secrets in logs ------------------------------------------------------------------------


class _DropTestClientLines(logging.Filter):
    """httpx logs each request's URL. The test's own clients stand in for SendGrid and the
    operator (their URLs hold webhook tokens on purpose); their lines are not the service's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == "httpx"
            and any(host in record.getMessage() for host in ("://ingest.test", "://sync.test"))
        )


@contextlib.contextmanager
def all_logs_at_debug() -> Iterator[io.StringIO]:
    """The services' own logging set-up (JSON lines, scrubbed), at DEBUG, into a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    others = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate,
               logging.getLogger(name).disabled)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }  # fmt: skip
    configure_logging("DEBUG")
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    handler.addFilter(_DropTestClientLines())
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, (handlers, propagate, disabled) in others.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.propagate, logger.disabled = handlers, propagate, disabled


async def test_the_logs_of_a_full_flow_hold_no_secret(
    ingest_app: FastAPI, sync_app: FastAPI, settings: Settings, sendgrid: respx.MockRouter
) -> None:
    with all_logs_at_debug() as buffer:
        secrets = await full_flow(ingest_app, sync_app, settings, sendgrid)
    output = buffer.getvalue()
    lines = output.splitlines()
    assert leaks(output, secrets) == []
    # The capture saw the flow: the access log, the sync, the calls to SendGrid (and, on
    # SQLite, aiosqlite's DEBUG lines with every statement's parameters).
    entries = [json.loads(line) for line in lines]
    assert any(e.get("route") == "/webhooks/{source_id}/{token}" for e in entries)
    assert any(e.get("route") == "/sources/{source_id}" and e.get("status") == 200 for e in entries)
    assert any(e.get("status") == 401 for e in entries)
    assert any(e["logger"] == "sendgrid_source.sync" for e in entries)
    assert any("sendgrid.test/v3/scopes" in e["message"] for e in entries)
    loggers = sorted({e["logger"] for e in entries})
    print(f"\n{len(lines)} log lines from {loggers}, none holding a secret")


# --- webhook tokens -------------------------------------------------------------------------


async def test_webhook_tokens_carry_at_least_128_random_bits(
    ingest_app: FastAPI, sendgrid: respx.MockRouter
) -> None:
    tokens, ids = [], []
    async with client_of(ingest_app, "http://ingest.test") as admin:
        for n in range(50):
            source = await register(admin, f"Source {n}")
            tokens.append(source["token"])
            ids.append(source["id"])
            # SQLite holds at most 10 sources: make room, the token is what is measured.
            deleted = await admin.delete(f"/sources/{source['id']}", params={"drop_data": "true"})
            assert deleted.status_code == 204
    assert len(set(tokens)) == 50
    decoded = []
    for token, source_id in zip(tokens, ids, strict=True):
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", token), token  # base64url, no padding
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) >= 16, token  # 128 bits
        assert source_id.replace("-", "") not in token
        decoded.append(raw)
    # Random, not a counter or a clock: no shared prefix, and about half the bits set.
    assert len({raw[:6] for raw in decoded}) == 50
    bits = "".join(f"{byte:08b}" for raw in decoded for byte in raw)
    assert 0.45 < bits.count("1") / len(bits) < 0.55


async def test_no_token_opens_another_sources_url(
    ingest_app: FastAPI, sendgrid: respx.MockRouter
) -> None:
    body = body_of([{"event": "open", "email": "a@example.com", "timestamp": 1700000000}])
    async with client_of(ingest_app, "http://ingest.test") as admin:
        sources = [await register(admin, f"Source {n}") for n in range(4)]
        for target in sources:
            token = target["token"]
            near = {
                token[:-1],
                token + "A",
                token[:-1] + ("A" if token[-1] != "A" else "B"),
                token.swapcase(),
                token.upper(),
                "",
            }
            near |= {other["token"] for other in sources if other is not target}
            for candidate in near:
                response = await admin.post(f"/webhooks/{target['id']}/{candidate}", content=body)
                assert response.status_code == 404, (candidate, response.status_code)
            assert (await admin.post(target["path"], content=body)).status_code == 200
    for source in sources:
        assert await count(ingest_app, f"SELECT count(*) FROM {source['schema']}.activity") == 1
