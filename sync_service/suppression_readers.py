"""The suppression lists (bounces, blocks, spam reports, invalid emails, global unsubscribes),
the unsubscribe groups, and each group's members (more-apis.md §2).

The five lists are read incrementally on `created`, the moment an address was added: from
the cursor less an overlap, to the run's start, both bounds inclusive as SendGrid filters
them. The upper bound keeps offset paging stable while addresses are being added. SendGrid
signals no removals, so a complete read, which finds them, is made on the first run and then
at most every SUPPRESSION_FULL_SCAN_INTERVAL. Groups and members are small and read
completely every run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.object_tables import SUPPRESSION_FIELDS
from sync_service.client import SendGridClient
from sync_service.collection_reader import CollectionReader, ReadContext, Reader, RowPages
from sync_service.cursors import Cursor
from sync_service.errors import SendGridError, SendGridNotFound
from sync_service.object_records import Row
from sync_service.pagination import fetch_single_page, iterate_offset_pages
from sync_service.records import integer, parse_timestamp, text_or_none

# The largest page the suppression endpoints serve (spec: limit 1-500).
SUPPRESSION_PAGE_SIZE = 500
# Read again before the cursor: an address can be listed a little after its `created`.
OVERLAP = timedelta(hours=1)

SUPPRESSION_PATHS: dict[str, str] = {
    "suppression_bounces": "/v3/suppression/bounces",
    "suppression_blocks": "/v3/suppression/blocks",
    "suppression_spam_reports": "/v3/suppression/spam_reports",
    "suppression_invalid_emails": "/v3/suppression/invalid_emails",
    "suppression_global_unsubscribes": "/v3/suppression/unsubscribes",
}


def suppression_row(item: Row, fields: tuple[str, ...], synced_at: datetime) -> Row:
    return {
        "email": str(item["email"]),
        "created": parse_timestamp(item.get("created")),
        **{name: text_or_none(item.get(name)) for name in fields},
        "raw": item,
        "synced_at": synced_at,
        "deleted_at": None,
    }


def _suppression_reader(path: str, fields: tuple[str, ...]) -> Reader:
    async def read(client: SendGridClient, context: ReadContext) -> RowPages:
        cursor, now = context.cursor, context.synced_at
        params: dict[str, str | int] = {"end_time": int(now.timestamp())}
        due = cursor.full_listing_at is None or (
            now - cursor.full_listing_at >= context.policy.suppression_full_scan_interval
        )
        full = cursor.position is None or due
        if not full:
            assert cursor.position is not None
            start = cursor.position - OVERLAP
            params["start_time"] = int(start.timestamp())
            context.scope.complete = False
            context.scope.window = (
                f"addresses added since {start:%Y-%m-%d %H:%M:%S} UTC; removals are found by "
                "the next complete read"
            )
        pages = iterate_offset_pages(client, path, limit=SUPPRESSION_PAGE_SIZE, params=params)
        async for page in pages:
            if any("email" not in item for item in page):
                raise SendGridError(f"{path} answered an entry without an email")
            yield [suppression_row(item, fields, now) for item in page]
        # Everything created up to the run's start has been read.
        context.scope.next_cursor = Cursor(now, now if full else cursor.full_listing_at)

    return read


async def read_groups(client: SendGridClient, context: ReadContext) -> RowPages:
    async for page in fetch_single_page(client, "/v3/asm/groups", items_key=None):
        yield [group_row(item, context) for item in page]


def group_row(item: Row, context: ReadContext) -> Row:
    return {
        "id": int(item["id"]),
        "name": text_or_none(item.get("name")),
        "description": text_or_none(item.get("description")),
        "is_default": item.get("is_default") if isinstance(item.get("is_default"), bool) else None,
        "unsubscribes": integer(item.get("unsubscribes")),
        "raw": item,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


async def read_group_members(client: SendGridClient, context: ReadContext) -> RowPages:
    """Every group's members, one page per group. A group gone from the listing leaves its
    members out, so they are marked deleted with it."""
    async for groups in fetch_single_page(client, "/v3/asm/groups", items_key=None):
        for group in groups:
            group_id = int(group["id"])
            path = f"/v3/asm/groups/{group_id}/suppressions"
            try:
                emails = await client.get_json(path)
            except SendGridNotFound:
                continue  # deleted since the groups were listed: its members are gone too
            if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
                raise SendGridError(f"{path} did not answer with a JSON array of addresses")
            yield [
                {
                    "group_id": group_id,
                    "email": email,
                    "raw": email,
                    "synced_at": context.synced_at,
                    "deleted_at": None,
                }
                for email in emails
            ]


SUPPRESSION_READERS: tuple[CollectionReader, ...] = (
    *(
        CollectionReader(
            name,
            None,
            path,
            f"the list is empty ({path})",
            _suppression_reader(path, SUPPRESSION_FIELDS[name]),
            uses_cursor=True,
        )
        for name, path in SUPPRESSION_PATHS.items()
    ),
    CollectionReader(
        "suppression_groups",
        None,
        "/v3/asm/groups",
        "the account has no unsubscribe groups",
        read_groups,
    ),
    CollectionReader(
        "suppression_group_members",
        None,
        "/v3/asm/groups/{group_id}/suppressions",
        "no unsubscribe group has members",
        read_group_members,
    ),
)
