"""The ways SendGrid hands out a collection, each as an async generator of pages.

Pages rather than items, so callers can write one batch per page. Every paginator refuses to
loop: SendGrid (and mocks of it) have been seen to hand back a token or page already given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sync_service.client import QueryParams, SendGridClient
from sync_service.errors import OffHostLink, PaginationLoop, SendGridError, SendGridNotFound

Item = dict[str, Any]
Page = list[Item]

# Batch deletions in Legacy Marketing Campaigns leave holes that come back as empty pages
# before the real end (a 404), so a few empty pages in a row are read past before stopping.
LEGACY_EMPTY_PAGES_BEFORE_END = 3


def extract_items(body: Any, key: str | None, where: str) -> Page:
    """The list of objects under `key` (or the body itself when `key` is None)."""
    items = body if key is None else body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        expected = "a JSON array" if key is None else f'an object with a "{key}" array'
        raise SendGridError(f"{where} did not answer with {expected}")
    return items


def _next_link(body: Any) -> str | None:
    metadata = body.get("_metadata") if isinstance(body, dict) else None
    link = metadata.get("next") if isinstance(metadata, dict) else None
    return link if isinstance(link, str) and link else None


def _page_token(url: str) -> str | None:
    tokens = parse_qs(urlsplit(url).query).get("page_token")
    return tokens[0] if tokens else None


async def iterate_token_pages(
    client: SendGridClient,
    path: str,
    *,
    items_key: str = "result",
    page_size: int | None = None,
    params: QueryParams | None = None,
) -> AsyncIterator[Page]:
    """Follow `_metadata.next` until it is absent, staying on the configured host. `params`
    go with the first request; the `next` links carry them on."""
    if page_size:
        params = {**(params or {}), "page_size": page_size}
    url = client.url_for(path)
    seen_urls = {str(httpx.URL(url, params=params))}
    seen_tokens: set[str] = set()
    previous: Page | None = None
    while True:
        body = await client.get_json(url, params)
        items = extract_items(body, items_key, urlsplit(url).path)
        if items and items == previous:
            # A server that ignores the token but hands out a fresh one every time.
            raise PaginationLoop(
                f"{urlsplit(url).path}: the page for token {_page_token(url)!r} returned the "
                "same rows as the page before it; stopped instead of reading them again"
            )
        yield items
        previous = items
        link = _next_link(body)
        if link is None:
            return
        next_url = client.url_for(link)
        if not client.is_on_host(next_url):
            # Following it would send the API key to whoever the link names.
            raise OffHostLink(
                f"{urlsplit(url).path}: the next-page link points to "
                f"{urlsplit(next_url).netloc or next_url!r}, not {client.base_url}"
            )
        token = _page_token(next_url)
        if str(httpx.URL(next_url)) in seen_urls or (token is not None and token in seen_tokens):
            raise PaginationLoop(
                f"{urlsplit(url).path}: SendGrid repeated the page token {token!r}; "
                "stopped instead of reading the same pages again"
            )
        seen_urls.add(str(httpx.URL(next_url)))
        if token is not None:
            seen_tokens.add(token)
        url, params = next_url, None


async def iterate_offset_pages(
    client: SendGridClient,
    path: str,
    *,
    limit: int,
    items_key: str | None = None,
    params: QueryParams | None = None,
) -> AsyncIterator[Page]:
    """`limit`/`offset` paging; a short or empty page is the last one."""
    offset = 0
    previous: Page | None = None
    while True:
        body = await client.get_json(path, {**(params or {}), "limit": limit, "offset": offset})
        items = extract_items(body, items_key, path)
        if items and items == previous:
            # A server that ignores `offset` returns the first page forever.
            raise PaginationLoop(f"{path}: offset {offset} returned the same rows as before")
        if items:
            yield items
        if len(items) < limit:
            return
        previous = items
        offset += limit


async def iterate_keyset_pages(
    client: SendGridClient, path: str, *, limit: int, items_key: str, id_key: str = "id"
) -> AsyncIterator[Page]:
    """`limit`/`lastSeenID` paging (verified senders): each page starts after the last id of
    the one before; a short page is the last one."""
    last_seen: Any = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if last_seen is not None:
            params["lastSeenID"] = last_seen
        items = extract_items(await client.get_json(path, params), items_key, path)
        if items:
            yield items
        if len(items) < limit:
            return
        following = items[-1].get(id_key)
        if following is None or following == last_seen:
            raise PaginationLoop(f"{path}: lastSeenID {last_seen!r} returned the same page again")
        last_seen = following


async def fetch_single_page(
    client: SendGridClient, path: str, *, items_key: str | None
) -> AsyncIterator[Page]:
    """An unpaged endpoint, in the same shape as the paged ones."""
    yield extract_items(await client.get_json(path), items_key, path)


async def iterate_numbered_pages(
    client: SendGridClient,
    path: str,
    *,
    items_key: str,
    page_size: int = 1000,
    empty_pages_before_end: int = LEGACY_EMPTY_PAGES_BEFORE_END,
) -> AsyncIterator[Page]:
    """Legacy contactdb `page`/`page_size` paging: read until a 404 says there is no page."""
    page = 1
    empty_in_a_row = 0
    previous: Page | None = None
    while True:
        try:
            body = await client.get_json(path, {"page": page, "page_size": page_size})
        except SendGridNotFound:
            return
        items = extract_items(body, items_key, path)
        if not items:
            empty_in_a_row += 1
            if empty_in_a_row >= empty_pages_before_end:
                return
        else:
            if items == previous:
                raise PaginationLoop(f"{path}: page {page} returned the same rows as before")
            empty_in_a_row = 0
            previous = items
            yield items
        page += 1
