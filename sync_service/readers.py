"""How the four collections of the first release (lists, segments, recipients and
campaigns) are read, from the new Marketing Campaigns API and from the legacy one.
"""

from __future__ import annotations

from typing import Any

from sync_service.client import SendGridClient
from sync_service.collection_reader import CollectionReader, ReadContext, RowPages
from sync_service.contact_records import ContactRecords, legacy_recipient_row
from sync_service.contacts_export import iterate_exported_batches
from sync_service.errors import SendGridError
from sync_service.listing_writer import BATCH_SIZE
from sync_service.object_records import Records, Row
from sync_service.pagination import (
    fetch_single_page,
    iterate_numbered_pages,
    iterate_offset_pages,
    iterate_token_pages,
)
from sync_service.records import (
    LEGACY,
    MARKETING,
    FieldTypes,
    campaign_row,
    legacy_campaign_row,
    legacy_list_row,
    legacy_segment_row,
    list_row,
    segment_row,
)

# Largest page sizes the API accepts (lists: spec max 1000; single sends: none given, Airbyte
# uses 100; legacy campaigns: no max given, default 10).
LISTS_PAGE_SIZE = 1000
SINGLE_SENDS_PAGE_SIZE = 100
LEGACY_CAMPAIGNS_PAGE_SIZE = 100


async def fetch_field_types(client: SendGridClient) -> FieldTypes:
    """Custom field names (lower-cased) and their types, from the field definitions."""
    body = await client.get_json("/v3/marketing/field_definitions")
    fields = body.get("custom_fields") if isinstance(body, dict) else None
    if not isinstance(fields, list):
        raise SendGridError("/v3/marketing/field_definitions had no custom_fields array")
    return {
        str(field["name"]).lower(): str(field.get("field_type", "Text"))
        for field in fields
        if isinstance(field, dict) and "name" in field
    }


async def read_lists(client: SendGridClient, context: ReadContext) -> RowPages:
    pages = iterate_token_pages(client, "/v3/marketing/lists", page_size=LISTS_PAGE_SIZE)
    async for page in pages:
        yield [list_row(item, context.synced_at) for item in page]


async def read_segments(client: SendGridClient, context: ReadContext) -> RowPages:
    # The spec's schema shows one object; the live API answers {"results": [...]}.
    pages = fetch_single_page(client, "/v3/marketing/segments/2.0", items_key="results")
    async for page in pages:
        yield [segment_row(item, context.synced_at) for item in page]


async def read_contacts(client: SendGridClient, context: ReadContext) -> RowPages:
    field_types: FieldTypes = {}

    async def while_pending() -> None:
        # The job is started: the run may read the other collections while it is built.
        context.scope.under_way.set()
        field_types.update(await fetch_field_types(client))

    builder: ContactRecords | None = None
    page: list[tuple[Any, ...]] = []
    async for batch in iterate_exported_batches(client, context.export, while_pending):
        if builder is None or builder.header != batch.header:  # once per file, if that
            builder = ContactRecords(batch.header, field_types, context.synced_at)
        page += builder.records(batch.records)
        while len(page) >= BATCH_SIZE:
            yield Records(ContactRecords.columns, page[:BATCH_SIZE])
            page = page[BATCH_SIZE:]
    if page:
        yield Records(ContactRecords.columns, page)


def _stored_detail(item: Row, stored: Any) -> Row | None:
    """The detail fetched by an earlier run, if the single send has not changed since."""
    if not isinstance(stored, dict) or "send_to" not in stored:
        return None
    if item.get("updated_at") is None or stored.get("updated_at") != item.get("updated_at"):
        return None
    return stored


async def read_single_sends(client: SendGridClient, context: ReadContext) -> RowPages:
    pages = iterate_token_pages(
        client, "/v3/marketing/singlesends", page_size=SINGLE_SENDS_PAGE_SIZE
    )
    async for page in pages:
        rows = []
        for item in page:
            # The list gives a summary; recipients and subject are only in the detail, which is
            # fetched again only when the single send changed (`updated_at`) since last time.
            detail = _stored_detail(item, context.stored.get(str(item["id"])))
            if detail is None:
                detail = await client.get_json(f"/v3/marketing/singlesends/{item['id']}")
            merged = {**(detail if isinstance(detail, dict) else {}), **item}
            rows.append(campaign_row(merged, context.synced_at))
        yield rows


async def read_legacy_lists(client: SendGridClient, context: ReadContext) -> RowPages:
    async for page in fetch_single_page(client, "/v3/contactdb/lists", items_key="lists"):
        yield [legacy_list_row(item, context.synced_at) for item in page]


async def read_legacy_segments(client: SendGridClient, context: ReadContext) -> RowPages:
    async for page in fetch_single_page(client, "/v3/contactdb/segments", items_key="segments"):
        yield [legacy_segment_row(item, context.synced_at) for item in page]


async def read_legacy_recipients(client: SendGridClient, context: ReadContext) -> RowPages:
    pages = iterate_numbered_pages(client, "/v3/contactdb/recipients", items_key="recipients")
    async for page in pages:
        yield [legacy_recipient_row(item, context.synced_at) for item in page]


async def read_legacy_campaigns(client: SendGridClient, context: ReadContext) -> RowPages:
    pages = iterate_offset_pages(
        client, "/v3/campaigns", limit=LEGACY_CAMPAIGNS_PAGE_SIZE, items_key="result"
    )
    async for page in pages:
        yield [legacy_campaign_row(item, context.synced_at) for item in page]


MARKETING_READERS = (
    CollectionReader(
        "lists", MARKETING, "/v3/marketing/lists", "the account has no contact lists", read_lists
    ),
    CollectionReader(
        "segments",
        MARKETING,
        "/v3/marketing/segments/2.0",
        "the account has no segments",
        read_segments,
    ),
    CollectionReader(
        "recipients",
        MARKETING,
        "/v3/marketing/contacts/exports",
        "the account has no contacts (the export was empty)",
        read_contacts,
    ),
    CollectionReader(
        "campaigns",
        MARKETING,
        "/v3/marketing/singlesends",
        "the account has no single sends",
        read_single_sends,
        uses_stored=True,
    ),
)

LEGACY_READERS = (
    CollectionReader(
        "lists", LEGACY, "/v3/contactdb/lists", "the account has no legacy lists", read_legacy_lists
    ),
    CollectionReader(
        "segments",
        LEGACY,
        "/v3/contactdb/segments",
        "the account has no legacy segments",
        read_legacy_segments,
    ),
    CollectionReader(
        "recipients",
        LEGACY,
        "/v3/contactdb/recipients",
        "the account has no legacy recipients",
        read_legacy_recipients,
    ),
    CollectionReader(
        "campaigns",
        LEGACY,
        "/v3/campaigns",
        "the account has no legacy campaigns",
        read_legacy_campaigns,
    ),
)
