"""SendGrid's API, answered from a `FakeAccountState` (state.py): Marketing Campaigns here with
the shapes of payloads.py, the other parts from their own modules (suppressions, templates,
senders, marketing_stats, stats, webhooks); the one set of request handlers, whether the app
runs as a server (server.py), behind httpx.ASGITransport, or behind respx routes
(respx_route.py). Every refused query is a 400 with SendGrid's error body (params.py).

Prism (the spec's mock server) cannot exercise a sync: it ignores page tokens, hands out
off-host `next` links, never finishes an export and sends no rate-limit headers. This app
serves real page tokens with `next` links on the host asked, an export job that goes
pending -> ready and serves files made while the job is pending, as SendGrid does (a million
contacts are about 30 MB of gzip in memory), `X-RateLimit-*` headers on every answer, and a
429 every `rate_limit_every` requests. `POST /fake/contacts/edit?share=0.01` edits a share of
generated contacts, so the next export differs from the last one by exactly that share.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from tests.fake_sendgrid.contacts import GeneratedContacts, export_builder
from tests.fake_sendgrid.marketing_stats import add_marketing_stats_routes
from tests.fake_sendgrid.params import BadRequest, bad_request_answer, int_param, page_offset
from tests.fake_sendgrid.payloads import (
    JSON,
    contact_count,
    error_body,
    export_created,
    export_status,
    field_definitions,
    paged,
    rate_limit_headers,
    scopes,
    single_send_detail,
)
from tests.fake_sendgrid.senders import add_sender_routes
from tests.fake_sendgrid.state import Export, FakeAccountState, generated_account
from tests.fake_sendgrid.stats import add_stats_routes
from tests.fake_sendgrid.suppressions import add_suppression_routes
from tests.fake_sendgrid.templates import add_template_routes
from tests.fake_sendgrid.webhooks import add_webhook_routes

_DOWNLOAD_CHUNK = 64 * 1024
_REVOKED = "The provided authorization grant is invalid, expired, or revoked"


def _refusal(account: FakeAccountState, path: str, authorization: str) -> JSONResponse | None:
    """The answer of an account switched to refuse this API path or key, if it is."""
    key = authorization.removeprefix("Bearer ").strip()
    if account.key_revoked or key in account.revoked_keys:
        body = {"errors": [{"message": _REVOKED, "field": None, "help": None}]}
        return JSONResponse(body, status_code=401)
    if account.unavailable:
        return JSONResponse({"errors": [{"message": "service unavailable"}]}, status_code=503)
    if path in account.forbidden:
        return JSONResponse(error_body("access forbidden"), status_code=403)
    return None


def create_fake_sendgrid(state: FakeAccountState | None = None) -> FastAPI:
    account = state if state is not None else generated_account()
    app = FastAPI(title="fake SendGrid")
    app.state.account = account
    app.add_exception_handler(BadRequest, bad_request_answer)
    add_webhook_routes(app, account.webhooks)
    add_stats_routes(app, account)
    add_suppression_routes(app, account)
    add_template_routes(app, account)
    add_sender_routes(app, account)
    add_marketing_stats_routes(app, account)

    @app.middleware("http")
    async def refusals_and_rate_limits(request: Request, call_next: Any) -> Response:
        account.requests += 1
        reset = time.time() + 1
        path = request.url.path
        if path.startswith("/v3/"):
            account.queries.append((path, dict(request.query_params)))
            every = account.rate_limit_every
            if every and account.requests % every == 0:
                return JSONResponse(
                    error_body("too many requests"),
                    status_code=429,
                    headers=rate_limit_headers(0, reset),
                )
            refused = _refusal(account, path, request.headers.get("authorization", ""))
            if refused is not None:
                refused.headers.update(rate_limit_headers(599, reset))
                return refused
        response: Response = await call_next(request)
        response.headers.update(rate_limit_headers(599, reset))
        return response

    def page(request: Request, items: list[JSON]) -> JSONResponse:
        query = request.query_params
        size = int_param(query, "page_size", default=100, minimum=1)
        return JSONResponse(paged(items, str(request.url), size, page_offset(query, len(items))))

    def api(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.get("/v3/scopes")
    async def scopes_() -> JSON:
        return scopes(account.scopes)

    @app.get("/v3/marketing/lists")
    async def lists(request: Request) -> JSONResponse:
        account.page_size_seen.append(request.query_params.get("page_size", ""))
        return page(request, account.lists)

    @app.get("/v3/marketing/segments/2.0")
    async def segments() -> JSON:
        return {"results": account.segments}

    @app.get("/v3/marketing/field_definitions")
    async def field_definitions_() -> JSON:
        return field_definitions(account.custom_fields)

    @app.get("/v3/marketing/contacts/count")
    async def contacts_count() -> JSON:
        return contact_count(len(account.contacts))

    @app.post("/v3/marketing/contacts/exports", status_code=202)
    async def start_export(request: Request) -> JSON:
        account.exports_started += 1
        export_id = str(uuid.uuid4())
        build = export_builder(
            account.contacts, account.custom_fields, account.export_files, account.gzip_export
        )
        # Like SendGrid, the files are made while the job is pending, not while they are
        # downloaded: the benchmark's download then measures the sync, not this fake.
        files = asyncio.create_task(asyncio.to_thread(build))
        account.exports[export_id] = Export(files, len(account.contacts))
        return export_created(export_id, api(request))

    @app.get("/v3/marketing/contacts/exports/{export_id}")
    async def export_status_(export_id: str, request: Request) -> JSONResponse:
        export = account.exports.get(export_id)
        if export is None:
            return JSONResponse(error_body("export not found"), status_code=404)
        export.polls += 1
        if account.export_failure is not None:
            body = export_status(export_id, "failure", message=account.export_failure)
            return JSONResponse(body)
        building = time.monotonic() - export.started < account.export_seconds
        if export.polls <= account.polls_before_ready or building:
            return JSONResponse(export_status(export_id, "pending", api=api(request)))
        files = await export.files  # ready only once its files are made
        downloads = account.downloads_url or f"{api(request)}/downloads"
        urls = [f"{downloads}/{export_id}/{part}.csv.gz" for part in range(len(files))]
        body = export_status(
            export_id, "ready", urls=urls, contact_count=export.contact_count, api=api(request)
        )
        return JSONResponse(body)

    @app.get("/downloads/{export_id}/{part}.csv.gz")
    async def download(export_id: str, part: int, request: Request) -> Response:
        if "authorization" in request.headers:
            # What S3 says when a pre-signed URL also carries a bearer token.
            return Response("Only one auth mechanism allowed", status_code=400)
        export = account.exports.get(export_id)
        files = await export.files if export is not None else []
        if not 0 <= part < len(files):
            return Response("NoSuchKey", status_code=404)
        data = files[part]
        chunks = (data[i : i + _DOWNLOAD_CHUNK] for i in range(0, len(data), _DOWNLOAD_CHUNK))
        return StreamingResponse(chunks, media_type="application/gzip")

    @app.post("/fake/contacts/edit")
    async def edit_contacts(share: float = 0.01) -> JSON:
        """Not SendGrid's: edit every (1/share)-th contact, for a re-sync that finds changes."""
        if not isinstance(account.contacts, GeneratedContacts):
            return {"revision": 0, "edited": 0}
        edited = account.contacts.edit(share)
        return {"revision": account.contacts.revision, "edited": edited}

    @app.get("/v3/marketing/singlesends")
    async def single_sends(request: Request) -> JSONResponse:
        return page(request, account.single_sends)

    @app.get("/v3/marketing/singlesends/{send_id}")
    async def single_send_(send_id: str) -> JSONResponse:
        account.details_fetched.append(send_id)
        short = account.single_send(send_id)
        if short is None:
            return JSONResponse(error_body("single send not found"), status_code=404)
        return JSONResponse(single_send_detail(short, account.send_lists.get(send_id, [])))

    add_legacy_routes(app, account)
    return app


def add_legacy_routes(app: FastAPI, account: FakeAccountState) -> None:
    """Legacy Marketing Campaigns (contactdb, campaigns): 403 unless the account has it."""

    def forbidden() -> JSONResponse:
        return JSONResponse(error_body("access forbidden"), status_code=403)

    @app.get("/v3/contactdb/recipients/count")
    async def recipient_count() -> JSONResponse:
        if account.legacy is None:
            return forbidden()
        return JSONResponse({"recipient_count": len(account.legacy["recipients"])})

    @app.get("/v3/contactdb/recipients")
    async def recipients(page: int = 1, page_size: int = 100) -> JSONResponse:
        if account.legacy is None:
            return forbidden()
        rows = account.legacy["recipients"][(page - 1) * page_size : page * page_size]
        if not rows:
            return JSONResponse(error_body("No more pages"), status_code=404)
        return JSONResponse({"recipients": rows})

    @app.get("/v3/contactdb/{key:path}")
    async def contactdb(key: str) -> JSONResponse:
        if account.legacy is None or key not in account.legacy:
            return forbidden()
        return JSONResponse({key: account.legacy[key]})

    @app.get("/v3/campaigns")
    async def campaigns(offset: int = 0, limit: int = 10) -> JSONResponse:
        if account.legacy is None:
            return forbidden()
        return JSONResponse({"result": account.legacy["campaigns"][offset : offset + limit]})
