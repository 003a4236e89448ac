"""Response bodies shaped as SendGrid's OpenAPI files (sendgrid/sendgrid-oai) say.

Each builder names the schema it follows; values come from the spec's examples where it has
them. Segments 2.0 is the one deliberate deviation: the spec's list schema is a single object,
the real API (and Airbyte) answers `{"results": [...]}`.
"""

from __future__ import annotations

import gzip
from typing import Any

import httpx

API = "https://api.sendgrid.com"  # where the tests' SendGrid is; the server's own URL for it

JSON = dict[str, Any]

# Header of a real contacts export (Airbyte's unit_tests/decompressed_response.csv).
EXPORT_HEADER = (
    "EMAIL,FIRST_NAME,LAST_NAME,ADDRESS_LINE_1,ADDRESS_LINE_2,CITY,STATE_PROVINCE_REGION,"
    "POSTAL_CODE,COUNTRY,ALTERNATE_EMAILS,PHONE_NUMBER,WHATSAPP,LINE,FACEBOOK,UNIQUE_NAME,"
    "CREATED_AT,UPDATED_AT,CONTACT_ID"
)


def error_body(message: str, field: str | None = None) -> JSON:
    """ErrorResponse: `{"errors":[{"field","message"}]}`."""
    return {"errors": [{"field": field, "message": message}]}


def rate_limit_headers(remaining: int, reset: float, limit: int = 600) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
    }


def scopes(names: list[str]) -> JSON:
    """`GET /v3/scopes`: the API key's scopes."""
    return {"scopes": names}


def marketing_list(list_id: str, name: str, contact_count: int, api: str = API) -> JSON:
    """mc_lists `List`."""
    return {
        "id": list_id,
        "name": name,
        "contact_count": contact_count,
        "_metadata": {"self": f"{api}/v3/marketing/lists/{list_id}"},
    }


def token_page(
    items: list[JSON], *, self_url: str, next_url: str | None = None, count: int | None = None
) -> JSON:
    """`{"result": [...], "_metadata": Metadata}` as lists and single sends answer."""
    metadata: JSON = {"self": self_url}
    if next_url is not None:
        metadata["next"] = next_url
    if count is not None:
        metadata["count"] = count
    return {"result": items, "_metadata": metadata}


def paged(items: list[JSON], url: str, page_size: int, start: int, key: str = "result") -> JSON:
    """The page of `items` from offset `start` that `GET url` answers, as SendGrid's token-paged
    endpoints do: `{key: [...], "_metadata": {prev, self, next, count}}` (Metadata in
    tsg_templates_v3 and tsg_mc_stats_v3). The links are `url` with its other parameters kept
    and `page_size`/`page_token` set (the token is the offset), on the host asked: `prev` while
    there is an earlier page, `next` while there is a later one."""
    following = start + page_size

    def link(offset: int) -> str:
        linked = httpx.URL(url).copy_set_param("page_size", page_size)
        if offset:
            return str(linked.copy_set_param("page_token", offset))
        return str(linked.copy_remove_param("page_token"))

    metadata: JSON = {}
    if start > 0:
        metadata["prev"] = link(max(0, start - page_size))
    metadata["self"] = link(start)
    if following < len(items):
        metadata["next"] = link(following)
    metadata["count"] = len(items)
    return {key: items[start:following], "_metadata": metadata}


def segment_v2(segment_id: str, name: str, contacts_count: int, parent_list_ids: list[str]) -> JSON:
    """mc_segments_2.0 `AllSegments200` (every required field)."""
    return {
        "id": segment_id,
        "name": name,
        "contacts_count": contacts_count,
        "created_at": "2026-03-02T09:15:00Z",
        "updated_at": "2026-11-20T17:40:12Z",
        "sample_updated_at": "2026-11-27T06:00:00Z",
        "next_sample_update": "2026-11-27T07:00:00Z",
        "parent_list_ids": parent_list_ids,
        "query_version": "2",
        "status": {"query_validation": "VALID"},
    }


def legacy_campaign(campaign_id: int, title: str, status: str) -> JSON:
    """lmc_campaigns `Campaigns2xx`, after the spec's `GET /v3/campaigns` example."""
    return {
        "id": campaign_id,
        "title": title,
        "subject": "New Products for Spring!",
        "sender_id": 124451,
        "list_ids": [110, 124],
        "segment_ids": [110],
        "categories": ["spring line"],
        "suppression_group_id": 42,
        "custom_unsubscribe_url": "",
        "ip_pool": "marketing",
        "html_content": "<html><head><title></title></head><body><p>Hi</p></body></html>",
        "plain_content": "Hi",
        "status": status,
    }


def legacy_recipient(recipient_id: str, email: str) -> JSON:
    """lmc_contactdb recipient, after the spec's list-recipients example."""
    return {
        "created_at": 1433348344,
        "custom_fields": [
            {"id": 6234, "name": "age", "type": "number", "value": None},
            {"id": 6235, "name": "fname", "type": "text", "value": "Example"},
        ],
        "email": email,
        "first_name": "Example",
        "id": recipient_id,
        "last_clicked": 1438616117,
        "last_emailed": 1438613272,
        "last_name": "User",
        "last_opened": 1438616109,
        "updated_at": 1438616119,
    }


def export_created(export_id: str, api: str = API) -> JSON:
    """202 body of `POST /v3/marketing/contacts/exports`: `{"id", "_metadata"}`."""
    return {
        "id": export_id,
        "_metadata": {"self": f"{api}/v3/marketing/contacts/exports/{export_id}"},
    }


def export_status(
    export_id: str,
    status: str,
    *,
    urls: list[str] | None = None,
    message: str | None = None,
    contact_count: int | None = None,
    api: str = API,
) -> JSON:
    """mc_contacts `ContactExport` (required: id, status, created_at, updated_at, expires_at)."""
    body: JSON = {
        "id": export_id,
        "status": status,
        "created_at": "2026-11-27T09:00:00Z",
        "updated_at": "2026-11-27T09:00:05Z",
        "expires_at": "2026-11-30T09:00:00Z",
        "_metadata": {"self": f"{api}/v3/marketing/contacts/exports/{export_id}"},
    }
    if status == "ready":
        body["completed_at"] = "2026-11-27T09:01:10Z"
        body["urls"] = urls or []
        body["contact_count"] = contact_count
    if message is not None:
        body["message"] = message
    return body


def field_definitions(custom_fields: list[JSON]) -> JSON:
    """mc_custom_fields `GET /v3/marketing/field_definitions`: the account's custom fields
    (`{"id", "name", "field_type"}`) and the reserved ones."""
    return {
        "custom_fields": custom_fields,
        "reserved_fields": [{"id": "_rf23_T", "name": "contact_id", "field_type": "Text"}],
    }


def contact_count(contacts: int) -> JSON:
    """`GET /v3/marketing/contacts/count`."""
    return {"contact_count": contacts, "billable_count": contacts}


def single_send(send_id: str, name: str, status: str = "triggered") -> JSON:
    """mc_singlesends `SinglesendResponseShort` (every required field)."""
    return {
        "id": send_id,
        "name": name,
        "abtest": None,
        "status": status,
        "categories": ["newsletter"],
        "send_at": "2026-11-02T15:00:00Z",
        "is_abtest": False,
        "updated_at": "2026-11-02T14:10:00Z",
        "created_at": "2026-10-30T09:00:00Z",
    }


def single_send_detail(short: JSON, list_ids: list[str]) -> JSON:
    """mc_singlesends `SinglesendResponse`: the summary plus send_to and email_config."""
    detail = {key: value for key, value in short.items() if key not in ("abtest", "is_abtest")}
    detail["send_to"] = {"list_ids": list_ids, "segment_ids": [], "all": False}
    detail["email_config"] = {
        "subject": f"{short['name']}: this month's news",
        "html_content": "<p>news</p>",
        "plain_content": "news",
        "generate_plain_content": True,
        "editor": "code",
        "suppression_group_id": 42,
        "custom_unsubscribe_url": None,
        "sender_id": 124451,
        "ip_pool": None,
    }
    detail["warnings"] = []
    return detail


def export_csv_row(contact_id: str, email: str, first_name: str, city: str = "Redwood City") -> str:
    """One row under EXPORT_HEADER, quoted the way the export quotes text."""
    return (
        f'{email},{first_name},Cd,"street address, P.O. box",,{city},CA,94063,USA,'
        f",,,,,,2026-01-05T10:00:00Z,2026-11-20T08:30:00Z,{contact_id}\r\n"
    )


def gzip_bytes(text: str) -> bytes:
    return gzip.compress(text.encode())


# StatsAdvancedGlobalStats (tsg_stats_v3.yaml): every metric of a `/v3/stats` day.
GLOBAL_STATS_METRICS = (
    "blocks",
    "bounce_drops",
    "bounces",
    "clicks",
    "deferred",
    "delivered",
    "invalid_emails",
    "opens",
    "processed",
    "requests",
    "spam_report_drops",
    "spam_reports",
    "unique_clicks",
    "unique_opens",
    "unsubscribe_drops",
    "unsubscribes",
)


def global_stats_day(day: str, metrics: dict[str, int]) -> JSON:
    """One day of `GET /v3/stats` (ListStat): `{date, stats: [{metrics: {...}}]}`, every metric
    present, zero unless given."""
    return {
        "date": day,
        "stats": [{"metrics": {name: metrics.get(name, 0) for name in GLOBAL_STATS_METRICS}}],
    }
