"""Transactional templates of both generations, and their versions (more-apis.md §5).

`generations=legacy,dynamic` is always sent: SendGrid's default is `legacy`, which silently
leaves out every dynamic template. Versions come embedded in each template of the listing
(no endpoint lists them), so `template_versions` reads the same listing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sync_service.client import SendGridClient
from sync_service.collection_reader import CollectionReader, ReadContext, RowPages
from sync_service.errors import SendGridError
from sync_service.object_records import Row
from sync_service.pagination import Page, iterate_token_pages
from sync_service.records import parse_timestamp, text_or_none

TEMPLATES = "/v3/templates"
# page_size is required, at most 200 (spec).
TEMPLATES_PAGE_SIZE = 200


def _listing(client: SendGridClient) -> AsyncIterator[Page]:
    return iterate_token_pages(
        client,
        TEMPLATES,
        items_key="result",
        page_size=TEMPLATES_PAGE_SIZE,
        params={"generations": "legacy,dynamic"},
    )


def template_row(item: Row, context: ReadContext) -> Row:
    return {
        "id": str(item["id"]),
        "name": text_or_none(item.get("name")),
        "generation": text_or_none(item.get("generation")),
        # "YYYY-MM-DD HH:MM:SS", no zone: SendGrid's times are UTC.
        "updated_at": parse_timestamp(item.get("updated_at")),
        "raw": item,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


def version_row(template_id: str, item: Row, context: ReadContext) -> Row:
    active = item.get("active")
    return {
        "template_id": template_id,
        "id": str(item["id"]),
        "name": text_or_none(item.get("name")),
        "subject": text_or_none(item.get("subject")),
        "active": bool(active) if active in (0, 1) else None,
        "editor": text_or_none(item.get("editor")),
        "updated_at": parse_timestamp(item.get("updated_at")),
        "raw": item,
        "synced_at": context.synced_at,
        "deleted_at": None,
    }


async def read_templates(client: SendGridClient, context: ReadContext) -> RowPages:
    async for page in _listing(client):
        yield [template_row(item, context) for item in page]


async def read_template_versions(client: SendGridClient, context: ReadContext) -> RowPages:
    async for page in _listing(client):
        rows = []
        for template in page:
            versions = template.get("versions") or []
            if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
                raise SendGridError(
                    f"{TEMPLATES}: template {template.get('id')} has no versions array"
                )
            rows += [version_row(str(template["id"]), version, context) for version in versions]
        yield rows


TEMPLATE_READERS: tuple[CollectionReader, ...] = (
    CollectionReader(
        "templates", None, TEMPLATES, "the account has no transactional templates", read_templates
    ),
    CollectionReader(
        "template_versions",
        None,
        TEMPLATES,
        "no template has a version",
        read_template_versions,
    ),
)
