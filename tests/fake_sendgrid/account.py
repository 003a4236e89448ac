"""A SendGrid account behind respx routes, whose contents a test can change between syncs.

Every answer is built by payloads.py, as the server's are; the routes read the
account's current state on each request, so "a contact deleted between two syncs" is just
removing it from `contacts` before the second sync.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

import httpx
import respx

from tests.fake_sendgrid.payloads import (
    EXPORT_HEADER,
    JSON,
    contact_count,
    error_body,
    export_created,
    export_status,
    field_definitions,
    legacy_campaign,
    legacy_recipient,
    marketing_list,
    paged,
    segment_v2,
    single_send,
    single_send_detail,
)

DOWNLOADS_HOST = "sendgrid-exports.s3.amazonaws.com"
DOWNLOADS = f"https://{DOWNLOADS_HOST}"


@dataclass
class Contact:
    contact_id: str
    email: str
    first_name: str
    custom: dict[str, str] = field(default_factory=dict)


class FakeAccount:
    """State of one account; `install` wires it to a respx router rooted at `base_url`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.lists: list[JSON] = []
        self.segments: list[JSON] = []
        self.contacts: list[Contact] = []
        self.single_sends: list[JSON] = []
        self.send_lists: dict[str, list[str]] = {}
        self.custom_fields: list[JSON] = []
        self.export_files = 1
        self.gzip_export = True
        # Paths answered 403 "access forbidden" (a missing scope or product).
        self.forbidden: set[str] = set()
        # Legacy Marketing Campaigns data; None means the account does not have it (403).
        self.legacy: dict[str, list[JSON]] | None = None
        self.exports_started = 0
        self.export_failure: str | None = None
        # Every API call answers 401 (a revoked key), or 503 (an outage).
        self.key_revoked = False
        self.unavailable = False
        self.page_size_seen: list[str] = []
        self.details_fetched: list[str] = []

    # --- building the account -------------------------------------------------------------

    def add_list(self, list_id: str, name: str, contact_count: int) -> None:
        self.lists.append(marketing_list(list_id, name, contact_count))

    def add_segment(self, segment_id: str, name: str, count: int, parents: list[str]) -> None:
        self.segments.append(segment_v2(segment_id, name, count, parents))

    def add_single_send(self, send_id: str, name: str, list_ids: list[str]) -> None:
        self.single_sends.append(single_send(send_id, name))
        self.send_lists[send_id] = list_ids

    def make_legacy(self) -> None:
        self.legacy = {
            "lists": [{"id": 1, "name": "the jones", "recipient_count": 2}],
            "segments": [
                {
                    "id": 1234,
                    "name": "Age segments < 25",
                    "list_id": 1,
                    "conditions": [{"field": "age", "value": "25", "operator": "lt"}],
                    "recipient_count": 1,
                }
            ],
            "recipients": [
                legacy_recipient("ZXhhbXBsZUBleGFtcGxlLmNvbQ==", "example@example.com"),
                legacy_recipient("am9uZXNAZXhhbXBsZS5jb20=", "jones@example.com"),
            ],
            "campaigns": [legacy_campaign(986724, "March Newsletter", "Sent")],
        }

    # --- answering ------------------------------------------------------------------------

    def install(self, router: respx.Router) -> None:
        api = self.base_url
        router.get(f"{api}/v3/marketing/lists").mock(side_effect=self._lists)
        router.get(f"{api}/v3/marketing/segments/2.0").mock(side_effect=self._segments)
        router.get(f"{api}/v3/marketing/field_definitions").mock(side_effect=self._fields)
        router.get(f"{api}/v3/marketing/contacts/count").mock(side_effect=self._contact_count)
        router.post(f"{api}/v3/marketing/contacts/exports").mock(side_effect=self._start_export)
        router.get(path__regex=r"^/v3/marketing/contacts/exports/[^/]+$").mock(
            side_effect=self._export_status
        )
        router.get(host=DOWNLOADS_HOST).mock(side_effect=self._download)
        router.get(f"{api}/v3/marketing/singlesends").mock(side_effect=self._single_sends)
        router.get(path__regex=r"^/v3/marketing/singlesends/[^/]+$").mock(
            side_effect=self._single_send
        )
        router.get(path__startswith="/v3/contactdb/").mock(side_effect=self._legacy)
        router.get(f"{api}/v3/campaigns").mock(side_effect=self._legacy)

    def _refused(self, request: httpx.Request) -> httpx.Response | None:
        if self.key_revoked:
            message = "The provided authorization grant is invalid, expired, or revoked"
            return httpx.Response(
                401, json={"errors": [{"message": message, "field": None, "help": None}]}
            )
        if self.unavailable:
            return httpx.Response(503, json={"errors": [{"message": "service unavailable"}]})
        if request.url.path in self.forbidden:
            return httpx.Response(403, json=error_body("access forbidden"))
        return None

    def _lists(self, request: httpx.Request) -> httpx.Response:
        self.page_size_seen.append(request.url.params.get("page_size", ""))
        body = paged(
            self.lists,
            f"{self.base_url}/v3/marketing/lists",
            int(request.url.params.get("page_size", "100")),
            request.url.params.get("page_token"),
        )
        return self._refused(request) or httpx.Response(200, json=body)

    def _segments(self, request: httpx.Request) -> httpx.Response:
        return self._refused(request) or httpx.Response(200, json={"results": self.segments})

    def _fields(self, request: httpx.Request) -> httpx.Response:
        body = field_definitions(self.custom_fields)
        return self._refused(request) or httpx.Response(200, json=body)

    def _contact_count(self, request: httpx.Request) -> httpx.Response:
        body = contact_count(len(self.contacts))
        return self._refused(request) or httpx.Response(200, json=body)

    def _start_export(self, request: httpx.Request) -> httpx.Response:
        self.exports_started += 1
        return self._refused(request) or httpx.Response(
            202, json=export_created(f"export-{self.exports_started}")
        )

    def _export_status(self, request: httpx.Request) -> httpx.Response:
        export_id = request.url.path.rsplit("/", 1)[1]
        if self.export_failure is not None:
            body = export_status(export_id, "failure", message=self.export_failure)
            return httpx.Response(200, json=body)
        urls = [f"{DOWNLOADS}/{export_id}/part-{n}.csv" for n in range(self.export_files)]
        body = export_status(export_id, "ready", urls=urls, contact_count=len(self.contacts))
        return httpx.Response(200, json=body)

    def _download(self, request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers:
            return httpx.Response(400, text="Only one auth mechanism allowed")
        part = int(request.url.path.rsplit("-", 1)[1].removesuffix(".csv"))
        names = [str(f["name"]).upper() for f in self.custom_fields]
        header = ",".join([EXPORT_HEADER, *names])
        chunk = self.contacts[part :: self.export_files]
        lines = [header] + [
            ",".join(
                [
                    c.email,
                    c.first_name,
                    "Cd",
                    '"street address, P.O. box"',
                    *[""] * 5,
                    '"a@x.example,b@x.example"',
                    *[""] * 5,
                    "2026-01-05T10:00:00Z",
                    "2026-11-20T08:30:00Z",
                    c.contact_id,
                    *[c.custom.get(str(f["name"]), "") for f in self.custom_fields],
                ]
            )
            for c in chunk
        ]
        data = ("\r\n".join(lines) + "\r\n").encode()
        return httpx.Response(200, content=gzip.compress(data) if self.gzip_export else data)

    def _single_sends(self, request: httpx.Request) -> httpx.Response:
        body = paged(
            self.single_sends,
            f"{self.base_url}/v3/marketing/singlesends",
            int(request.url.params.get("page_size", "100")),
            request.url.params.get("page_token"),
        )
        return self._refused(request) or httpx.Response(200, json=body)

    def _single_send(self, request: httpx.Request) -> httpx.Response:
        send_id = request.url.path.rsplit("/", 1)[1]
        self.details_fetched.append(send_id)
        short = next(s for s in self.single_sends if s["id"] == send_id)
        detail = single_send_detail(short, self.send_lists[send_id])
        return self._refused(request) or httpx.Response(200, json=detail)

    def _legacy(self, request: httpx.Request) -> httpx.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        if self.legacy is None:
            return httpx.Response(403, json=error_body("access forbidden"))
        path = request.url.path
        if path == "/v3/contactdb/recipients/count":
            return httpx.Response(200, json={"recipient_count": len(self.legacy["recipients"])})
        if path == "/v3/contactdb/recipients":
            page = int(request.url.params.get("page", "1"))
            size = int(request.url.params.get("page_size", "100"))
            rows = self.legacy["recipients"][(page - 1) * size : page * size]
            if not rows:
                return httpx.Response(404, json=error_body("No more pages"))
            return httpx.Response(200, json={"recipients": rows})
        if path == "/v3/campaigns":
            offset = int(request.url.params.get("offset", "0"))
            limit = int(request.url.params.get("limit", "10"))
            return httpx.Response(
                200, json={"result": self.legacy["campaigns"][offset : offset + limit]}
            )
        key = path.removeprefix("/v3/contactdb/")
        return httpx.Response(200, json={key: self.legacy[key]})
