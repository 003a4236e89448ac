"""A generated SendGrid Marketing Campaigns account of any size over real HTTP, for the
benchmark and the end-to-end and fault tests. Its answers come from payloads.py, as the
respx account's do (account.py).

Prism (the spec's mock server) cannot exercise a sync: it ignores page tokens, hands out
off-host `next` links, never finishes an export and sends no rate-limit headers. This fake
serves real page tokens with `next` links on its own host, an export job that goes pending ->
ready and serves gzip CSV files made while the job is pending, as SendGrid does (a million
contacts are about 30 MB of gzip in this process's memory),
`X-RateLimit-*` headers on every answer, and a 429 every `rate_limit_every` requests.
`POST /fake/contacts/edit?share=0.01` edits a share of the contacts (name, orders, updated_at),
so the next export differs from the last one by exactly that share.

    python -m tests.fake_sendgrid.server --contacts 1000000 --port 4010
    SENDGRID_API_URL=http://127.0.0.1:4010 sendgrid-source sync-now SOURCE
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from tests.fake_sendgrid.payloads import (
    EXPORT_HEADER,
    JSON,
    contact_count,
    error_body,
    export_created,
    export_status,
    field_definitions,
    marketing_list,
    paged,
    rate_limit_headers,
    scopes,
    segment_v2,
    single_send,
    single_send_detail,
)

# The generated contacts' one custom field, a Number.
CUSTOM_FIELDS = [{"id": "w1", "name": "num_orders", "field_type": "Number"}]
_HEADER = f"{EXPORT_HEADER},NUM_ORDERS"
_LIST_0 = str(uuid.UUID(int=10_000))


@dataclass
class FakeAccountState:
    contacts: int = 1000
    lists: int = 25
    segments: int = 5
    single_sends: int = 10
    export_files: int = 2
    # Every Nth API request answers 429 until the next second; 0 turns this off.
    rate_limit_every: int = 0
    polls_before_ready: int = 1
    # Edits so far: while `revision` > 0, every `edited_every`-th contact carries it.
    revision: int = 0
    edited_every: int = 100
    requests: int = 0
    exports: dict[str, int] = field(default_factory=dict)
    # The revision each export job was started at: a job exports the account as it was then.
    export_revisions: dict[str, int] = field(default_factory=dict)


def _contact_id(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def _export_rows(state: FakeAccountState, part: int, revision: int = 0) -> Iterator[bytes]:
    """One export file as gzip, generated in chunks of a thousand rows."""
    compressor = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
    yield compressor.compress((_HEADER + "\r\n").encode())
    lines: list[str] = []
    every = state.edited_every
    for n in range(part, state.contacts, state.export_files):
        if revision and n % every == 0:
            name, orders = f"First{n}-r{revision}", n % 17 + revision
            updated = f"2026-11-27T{revision % 24:02d}:{revision // 24 % 60:02d}:00Z"
        else:
            name, orders, updated = f"First{n}", n % 17, "2026-11-20T08:30:00Z"
        lines.append(
            f'user{n}@example.com,{name},Last{n},"{n} Main St, Apt {n % 40}",,Springfield,'
            f"CA,94063,USA,,,,,,,2026-01-05T10:00:00Z,{updated},{_contact_id(n)},{orders}\r\n"
        )
        if len(lines) == 1000:
            yield compressor.compress("".join(lines).encode())
            lines = []
    yield compressor.compress("".join(lines).encode()) + compressor.flush()


_DOWNLOAD_CHUNK = 64 * 1024


def _export_files(state: FakeAccountState, revision: int) -> list[bytes]:
    return [b"".join(_export_rows(state, part, revision)) for part in range(state.export_files)]


def create_fake_sendgrid(state: FakeAccountState | None = None) -> FastAPI:
    account = state or FakeAccountState()
    # Export id -> its files, made in a thread as soon as the job is started.
    files: dict[str, asyncio.Task[list[bytes]]] = {}
    app = FastAPI(title="fake SendGrid")
    app.state.account = account

    @app.middleware("http")
    async def rate_limits(request: Request, call_next: Any) -> Response:
        account.requests += 1
        reset = time.time() + 1
        every = account.rate_limit_every
        if every and account.requests % every == 0 and request.url.path.startswith("/v3/"):
            return JSONResponse(
                error_body("too many requests"),
                status_code=429,
                headers=rate_limit_headers(0, reset),
            )
        response: Response = await call_next(request)
        response.headers.update(rate_limit_headers(599, reset))
        return response

    def page(request: Request, items: list[JSON]) -> JSONResponse:
        base = str(request.url.remove_query_params(["page_token", "page_size"]))
        size = int(request.query_params.get("page_size", "100"))
        return JSONResponse(paged(items, base, size, request.query_params.get("page_token")))

    def api(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.get("/v3/scopes")
    async def scopes_() -> JSON:
        return scopes(["marketing.read", "scopes.read", "suppression.read"])

    @app.get("/v3/marketing/lists")
    async def lists(request: Request) -> JSONResponse:
        items = [
            marketing_list(
                str(uuid.UUID(int=10_000 + n)),
                f"list {n}",
                account.contacts // (n + 1),
                api(request),
            )
            for n in range(account.lists)
        ]
        return page(request, items)

    @app.get("/v3/marketing/segments/2.0")
    async def segments() -> JSON:
        return {
            "results": [
                segment_v2(str(uuid.UUID(int=20_000 + n)), f"segment {n}", n * 10, [_LIST_0])
                for n in range(account.segments)
            ]
        }

    @app.get("/v3/marketing/field_definitions")
    async def field_definitions_() -> JSON:
        return field_definitions(CUSTOM_FIELDS)

    @app.get("/v3/marketing/contacts/count")
    async def contacts_count() -> JSON:
        return contact_count(account.contacts)

    @app.post("/v3/marketing/contacts/exports", status_code=202)
    async def start_export(request: Request) -> dict[str, Any]:
        export_id = str(uuid.uuid4())
        account.exports[export_id] = 0
        account.export_revisions[export_id] = account.revision
        # Like SendGrid, the files are made while the job is pending, not while they are
        # downloaded: the benchmark's download then measures the sync, not this fake.
        files[export_id] = asyncio.create_task(
            asyncio.to_thread(_export_files, account, account.revision)
        )
        return export_created(export_id, api(request))

    @app.get("/v3/marketing/contacts/exports/{export_id}")
    async def export_status_(export_id: str, request: Request) -> JSONResponse:
        if export_id not in account.exports:
            return JSONResponse(error_body("export not found"), status_code=404)
        account.exports[export_id] += 1
        if account.exports[export_id] <= account.polls_before_ready:
            return JSONResponse(export_status(export_id, "pending", api=api(request)))
        await files[export_id]  # ready only once its files are made
        urls = [
            f"{request.base_url}downloads/{export_id}/{part}.csv.gz"
            for part in range(account.export_files)
        ]
        body = export_status(
            export_id, "ready", urls=urls, contact_count=account.contacts, api=api(request)
        )
        return JSONResponse(body)

    @app.get("/downloads/{export_id}/{part}.csv.gz")
    async def download(export_id: str, part: int, request: Request) -> Response:
        if "authorization" in request.headers:
            # What S3 says when a pre-signed URL also carries a bearer token.
            return Response("Only one auth mechanism allowed", status_code=400)
        if export_id not in account.exports or not 0 <= part < account.export_files:
            return Response("NoSuchKey", status_code=404)
        data = (await files[export_id])[part]
        chunks = (data[i : i + _DOWNLOAD_CHUNK] for i in range(0, len(data), _DOWNLOAD_CHUNK))
        return StreamingResponse(chunks, media_type="application/gzip")

    @app.post("/fake/contacts/edit")
    async def edit_contacts(share: float = 0.01) -> dict[str, Any]:
        """Not SendGrid's: edit every (1/share)-th contact, for a re-sync that finds changes."""
        account.revision += 1
        account.edited_every = max(1, round(1 / share))
        edited = len(range(0, account.contacts, account.edited_every))
        return {"revision": account.revision, "edited": edited}

    def generated_single_send(n: int) -> JSON:
        return single_send(str(uuid.UUID(int=30_000 + n)), f"single send {n}")

    @app.get("/v3/marketing/singlesends")
    async def single_sends(request: Request) -> JSONResponse:
        return page(request, [generated_single_send(n) for n in range(account.single_sends)])

    @app.get("/v3/marketing/singlesends/{send_id}")
    async def single_send_(send_id: str) -> JSONResponse:
        n = uuid.UUID(send_id).int - 30_000
        if not 0 <= n < account.single_sends:
            return JSONResponse(error_body("single send not found"), status_code=404)
        return JSONResponse(single_send_detail(generated_single_send(n), [_LIST_0]))

    @app.api_route("/v3/contactdb/{rest:path}", methods=["GET"])
    async def no_legacy(rest: str) -> JSONResponse:
        return JSONResponse(error_body("access forbidden"), status_code=403)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--lists", type=int, default=2500)
    parser.add_argument("--single-sends", type=int, default=10)
    parser.add_argument("--export-files", type=int, default=2)
    parser.add_argument("--rate-limit-every", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4010)
    args = parser.parse_args()
    state = FakeAccountState(
        contacts=args.contacts,
        lists=args.lists,
        single_sends=args.single_sends,
        export_files=args.export_files,
        rate_limit_every=args.rate_limit_every,
    )
    uvicorn.run(create_fake_sendgrid(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
