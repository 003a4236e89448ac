"""SendGrid's two sender catalogues in the fake app:

- `GET /v3/marketing/senders` (tsg_mc_senders_v3.yaml ListSender): `{"results": [Sender]}`,
  unpaged, the Marketing Campaigns senders;
- `GET /v3/verified_senders` (tsg_verified_senders_v3.yaml ListVerifiedSender):
  `{"results": [VerifiedSenderResponse]}`, the Sender Identities, by ascending `id`: `limit`
  caps the count, `lastSeenID` starts after that id (keyset paging), `id` picks one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fake_sendgrid.params import int_param
from tests.fake_sendgrid.payloads import JSON

if TYPE_CHECKING:
    from tests.fake_sendgrid.state import FakeAccountState


def marketing_sender(
    sender_id: int,
    nickname: str,
    from_email: str,
    *,
    verified: bool = True,
    locked: bool = False,
    created_at: int = 1449872165,
    updated_at: int = 1449872165,
    **fields: object,
) -> JSON:
    """mc_senders `Sender` (every required field), the spec example's values unless given;
    `created_at`/`updated_at` are unix seconds."""
    return {
        "id": sender_id,
        "nickname": nickname,
        "from": {"email": from_email, "name": nickname},
        "reply_to": {"email": "support@example.com", "name": "Example Support"},
        "address": "1234 Fake St.",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "zip": "94105",
        "country": "United States",
        "verified": verified,
        "locked": locked,
        "created_at": created_at,
        "updated_at": updated_at,
        **fields,
    }


def verified_sender(
    sender_id: int, nickname: str, from_email: str, *, verified: bool = True, **fields: object
) -> JSON:
    """verified_senders `VerifiedSenderResponse`, the spec example's values unless given."""
    return {
        "id": sender_id,
        "nickname": nickname,
        "from_email": from_email,
        "from_name": nickname,
        "reply_to": from_email,
        "reply_to_name": nickname,
        "address": "1234 Fake St.",
        "address2": "PO Box 1234",
        "state": "CA",
        "city": "San Francisco",
        "country": "USA",
        "zip": "94105",
        "verified": verified,
        "locked": False,
        **fields,
    }


def add_sender_routes(app: FastAPI, account: FakeAccountState) -> None:
    """On the app itself, not an included router, so respx_route finds each route."""

    @app.get("/v3/marketing/senders")
    async def marketing_senders() -> JSONResponse:
        return JSONResponse({"results": account.marketing_senders})

    @app.get("/v3/verified_senders")
    async def verified_senders(request: Request) -> JSONResponse:
        query = request.query_params
        # The spec gives `limit` no default or maximum: without it, every sender is listed.
        limit = int_param(query, "limit", minimum=1)
        after = int_param(query, "lastSeenID")
        only = int_param(query, "id")
        chosen = [
            sender
            for sender in sorted(account.verified_senders, key=lambda s: int(s["id"]))
            if (after is None or sender["id"] > after) and (only is None or sender["id"] == only)
        ]
        return JSONResponse({"results": chosen[:limit]})
