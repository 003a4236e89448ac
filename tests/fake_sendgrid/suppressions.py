"""SendGrid's suppression lists and unsubscribe (ASM) groups in the fake app, as
tsg_suppressions_v3.yaml answers them:

- `GET /v3/suppression/{bounces,blocks,spam_reports,invalid_emails,unsubscribes}`: a bare JSON
  array, paged by `limit` (1..500) and `offset`, filtered by `start_time`/`end_time` (unix
  seconds, both inclusive, on `created`) and by `email` (a prefix; `%` is a wildcard);
- `GET /v3/asm/groups` (a bare array, no paging; `?id=` repeated picks groups) and
  `GET /v3/asm/groups/{group_id}/suppressions` (a bare array of addresses).

Rows have no id: one row per address per list (`FakeAccountState.add_suppression` replaces the
address's row), and SendGrid signals no removal, so a test removes a row from the list itself.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fake_sendgrid.params import BadRequest, int_param
from tests.fake_sendgrid.payloads import JSON, error_body

if TYPE_CHECKING:
    from tests.fake_sendgrid.state import FakeAccountState

# The five lists, as named in their paths (`unsubscribes` is the global unsubscribe list).
SUPPRESSION_KINDS = ("bounces", "blocks", "spam_reports", "invalid_emails", "unsubscribes")

# Each list's fields beside `created` and `email`, with the values of the spec's examples.
SUPPRESSION_DEFAULTS: dict[str, JSON] = {
    "bounces": {
        "reason": (
            "550 5.1.1 The email account that you tried to reach does not exist. Please try "
            "double-checking the recipient's email address for typos or unnecessary spaces. "
            "Learn more at  https://support.google.com/mail/answer/6596 "
            "o186si2389584ioe.63 - gsmtp "
        ),
        "status": "5.1.1",
    },
    "blocks": {
        "reason": "error dialing remote address: dial tcp 10.57.152.165:25: no route to host",
        "status": "4.0.0",
    },
    "spam_reports": {"ip": "10.63.202.100"},
    "invalid_emails": {"reason": "Mail domain mentioned in email address is unknown"},
    "unsubscribes": {},
}

# The spec gives no default page size; this one is small, so a reader that leaves `limit` out
# and takes the default for 500 stops after the first page and is caught by the tests.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def suppression(kind: str, email: str, created: int, **fields: object) -> JSON:
    """One row of list `kind`: `created` (unix seconds), `email` and the list's own fields
    (BounceResponse, BlocksResponse, SpamReportsResponse, InvalidEmail, the global unsubscribe
    item), the spec's example values unless given. Fields the spec does not name are kept, to
    stand for fields SendGrid adds later."""
    if kind not in SUPPRESSION_DEFAULTS:
        raise ValueError(f"unknown suppression list {kind!r}: one of {SUPPRESSION_KINDS}")
    return {"created": created, "email": email, **SUPPRESSION_DEFAULTS[kind], **fields}


def suppression_group(
    group_id: int, name: str, description: str, is_default: bool, unsubscribes: int
) -> JSON:
    """SuppressionGroup: `{id, name (<= 30), description (<= 100), is_default, unsubscribes}`."""
    if len(name) > 30 or len(description) > 100:
        raise ValueError("a group's name is at most 30 characters, its description at most 100")
    return {
        "id": group_id,
        "name": name,
        "description": description,
        "is_default": is_default,
        "unsubscribes": unsubscribes,
    }


def _email_filter(pattern: str) -> re.Pattern[str]:
    """The `email` parameter: addresses starting with it, `%` standing for any characters."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")), re.IGNORECASE)


def listed_suppressions(rows: list[JSON], query: dict[str, str]) -> list[JSON]:
    """The page of `rows` a list endpoint answers to `query`.

    Ordered by (`created`, `email`): the spec states no order (its examples show both), and
    this is the order in which a list grows, so a row added while a reader pages lands after
    the rows already read instead of shifting them onto the next page, and rows of the same
    second keep one order between requests, which offset paging needs."""
    limit = int_param(query, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    offset = int_param(query, "offset", default=0, minimum=0)
    start = int_param(query, "start_time")
    end = int_param(query, "end_time")
    email = query.get("email")
    matching = _email_filter(email) if email else None
    chosen = sorted(
        (
            row
            for row in rows
            if (start is None or row["created"] >= start)
            and (end is None or row["created"] <= end)
            and (matching is None or matching.match(row["email"]))
        ),
        key=lambda row: (row["created"], row["email"]),
    )
    return chosen[offset : offset + limit]


def add_suppression_routes(app: FastAPI, account: FakeAccountState) -> None:
    """On the app itself, not an included router, so respx_route finds each route."""

    def list_route(kind: str) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def suppression_list(request: Request) -> JSONResponse:
            rows = account.suppressions[kind]
            return JSONResponse(listed_suppressions(rows, dict(request.query_params)))

        return suppression_list

    for kind in SUPPRESSION_KINDS:
        app.get(f"/v3/suppression/{kind}", name=f"suppression_{kind}")(list_route(kind))

    @app.get("/v3/asm/groups")
    async def groups(request: Request) -> JSONResponse:
        ids = request.query_params.getlist("id")
        if not all(i.isdigit() for i in ids):
            raise BadRequest("id", f"group ids are integers, not {ids}")
        wanted = {int(i) for i in ids}
        chosen = [
            {**group, "unsubscribes": len(account.group_members.get(group["id"], []))}
            for group in account.suppression_groups
            if not wanted or group["id"] in wanted
        ]
        return JSONResponse(chosen)

    @app.get("/v3/asm/groups/{group_id}/suppressions")
    async def group_members(group_id: str) -> JSONResponse:
        known = {group["id"] for group in account.suppression_groups}
        if not group_id.isdigit() or int(group_id) not in known:
            return JSONResponse(error_body(f"group {group_id} not found"), status_code=404)
        return JSONResponse(account.group_members.get(int(group_id), []))
