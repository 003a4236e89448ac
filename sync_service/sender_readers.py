"""Senders: the Marketing Campaigns senders of an account on the new API, and otherwise its
verified senders (Sender Identities), which every account has. Both fill `senders`; `api`
says which listing a row came from."""

from __future__ import annotations

from typing import Any

from sync_service.client import SendGridClient
from sync_service.collection_reader import CollectionReader, ReadContext, RowPages
from sync_service.object_records import Row
from sync_service.pagination import fetch_single_page, iterate_keyset_pages
from sync_service.records import MARKETING, parse_timestamp, text_or_none

VERIFIED = "verified"
MARKETING_SENDERS = "/v3/marketing/senders"
VERIFIED_SENDERS = "/v3/verified_senders"
# No maximum is given in the spec; SendGrid's own examples page by 100 or fewer.
VERIFIED_PAGE_SIZE = 100


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _address(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def marketing_sender_row(item: Row, context: ReadContext) -> Row:
    """mc_senders `Sender`: `from` and `reply_to` are objects; times are unix seconds."""
    sender, reply_to = _address(item.get("from")), _address(item.get("reply_to"))
    return {
        "id": int(item["id"]),
        "nickname": text_or_none(item.get("nickname")),
        "from_email": text_or_none(sender.get("email")),
        "from_name": text_or_none(sender.get("name")),
        "reply_to_email": text_or_none(reply_to.get("email")),
        "verified": _flag(item.get("verified")),
        "locked": _flag(item.get("locked")),
        "created_at": parse_timestamp(item.get("created_at")),
        "updated_at": parse_timestamp(item.get("updated_at")),
        "api": MARKETING,
        "raw": item,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


def verified_sender_row(item: Row, context: ReadContext) -> Row:
    """verified_senders `VerifiedSenderResponse`: flat fields, no times."""
    return {
        "id": int(item["id"]),
        "nickname": text_or_none(item.get("nickname")),
        "from_email": text_or_none(item.get("from_email")),
        "from_name": text_or_none(item.get("from_name")),
        "reply_to_email": text_or_none(item.get("reply_to")),
        "verified": _flag(item.get("verified")),
        "locked": _flag(item.get("locked")),
        "created_at": None,
        "updated_at": None,
        "api": VERIFIED,
        "raw": item,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


async def read_marketing_senders(client: SendGridClient, context: ReadContext) -> RowPages:
    async for page in fetch_single_page(client, MARKETING_SENDERS, items_key="results"):
        yield [marketing_sender_row(item, context) for item in page]


async def read_verified_senders(client: SendGridClient, context: ReadContext) -> RowPages:
    pages = iterate_keyset_pages(
        client, VERIFIED_SENDERS, limit=VERIFIED_PAGE_SIZE, items_key="results"
    )
    async for page in pages:
        yield [verified_sender_row(item, context) for item in page]


MARKETING_SENDERS_READER = CollectionReader(
    "senders", MARKETING, MARKETING_SENDERS, "the account has no senders", read_marketing_senders
)
VERIFIED_SENDERS_READER = CollectionReader(
    "senders",
    VERIFIED,
    VERIFIED_SENDERS,
    "the account has no verified senders",
    read_verified_senders,
)
