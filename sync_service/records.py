"""SendGrid objects as rows of the source's `lists`, `segments` and `campaigns`, and the
value conversions every object table shares (`recipients` rows: contact_records.py).

Both APIs fill the same tables; `api` says which one a row came from, and `raw` keeps the
object exactly as SendGrid sent it, so nothing is lost to the typed columns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync_service.object_records import Row

MARKETING = "marketing"  # the new API, /v3/marketing/*
LEGACY = "legacy"  # Legacy Marketing Campaigns, /v3/contactdb/* and /v3/campaigns

# Custom field name (lower-cased) -> SendGrid field type: "Text", "Number" or "Date".
FieldTypes = dict[str, str]


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (new API) or unix seconds (legacy API) as an aware UTC datetime."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (ValueError, OverflowError):
            return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def integer(value: Any) -> int | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def type_field_value(value: Any, field_type: str) -> Any:
    """A custom field value as its declared type; left as sent when it does not parse."""
    if value is None or value == "":
        return None
    kind = field_type.lower()
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            number = float(str(value))
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in str(value) else number
    if kind == "date":
        moment = _parse_field_date(value)
        return moment if moment is not None else value
    return str(value)


def _parse_field_date(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    text = str(value).strip()
    # The Marketing Campaigns UI shows and imports dates as MM/DD/YYYY.
    for layout in ("%m/%d/%Y",):
        try:
            return datetime.strptime(text, layout).date().isoformat()
        except ValueError:
            pass
    moment = parse_timestamp(text)
    return moment.isoformat() if moment is not None else None


def object_columns(raw: Any, api: str, synced_at: datetime) -> Row:
    """The columns every object table has besides its own."""
    return {"api": api, "raw": raw, "synced_at": synced_at, "deleted_at": None}


def list_row(item: Row, synced_at: datetime) -> Row:
    return {
        "id": str(item["id"]),
        "name": text_or_none(item.get("name")),
        "contact_count": integer(item.get("contact_count")),
        **object_columns(item, MARKETING, synced_at),
    }


def legacy_list_row(item: Row, synced_at: datetime) -> Row:
    return {
        "id": str(item["id"]),
        "name": text_or_none(item.get("name")),
        "contact_count": integer(item.get("recipient_count")),
        **object_columns(item, LEGACY, synced_at),
    }


def segment_row(item: Row, synced_at: datetime) -> Row:
    status = item.get("status")
    return {
        "id": str(item["id"]),
        "name": text_or_none(item.get("name")),
        "contacts_count": integer(item.get("contacts_count")),
        "parent_list_ids": item.get("parent_list_ids") or [],
        "query_version": text_or_none(item.get("query_version")),
        "query_validation": text_or_none(status.get("query_validation"))
        if isinstance(status, dict)
        else None,
        "created_at": parse_timestamp(item.get("created_at")),
        "updated_at": parse_timestamp(item.get("updated_at")),
        "sample_updated_at": parse_timestamp(item.get("sample_updated_at")),
        "next_sample_update": parse_timestamp(item.get("next_sample_update")),
        **object_columns(item, MARKETING, synced_at),
    }


def legacy_segment_row(item: Row, synced_at: datetime) -> Row:
    list_id = item.get("list_id")
    return {
        "id": str(item["id"]),
        "name": text_or_none(item.get("name")),
        "contacts_count": integer(item.get("recipient_count")),
        "parent_list_ids": [str(list_id)] if list_id is not None else [],
        "query_version": None,
        "query_validation": None,
        "created_at": None,
        "updated_at": None,
        "sample_updated_at": None,
        "next_sample_update": None,
        **object_columns(item, LEGACY, synced_at),
    }


def campaign_row(item: Row, synced_at: datetime) -> Row:
    """A single send: the list entry merged with its detail (`send_to`, `email_config`)."""
    config = item.get("email_config")
    if not isinstance(config, dict):
        config = {}
    return {
        "id": str(item["id"]),
        "name": text_or_none(item.get("name")),
        "status": text_or_none(item.get("status")),
        "categories": item.get("categories") or [],
        "send_at": parse_timestamp(item.get("send_at")),
        "is_abtest": item.get("is_abtest") if isinstance(item.get("is_abtest"), bool) else None,
        "subject": text_or_none(config.get("subject")),
        "sender_id": integer(config.get("sender_id")),
        "suppression_group_id": integer(config.get("suppression_group_id")),
        "send_to": item.get("send_to"),
        "created_at": parse_timestamp(item.get("created_at")),
        "updated_at": parse_timestamp(item.get("updated_at")),
        **object_columns(item, MARKETING, synced_at),
    }


def legacy_campaign_row(item: Row, synced_at: datetime) -> Row:
    return {
        "id": str(item["id"]),
        "name": text_or_none(item.get("title")),
        "status": text_or_none(item.get("status")),
        "categories": item.get("categories") or [],
        "send_at": None,
        "is_abtest": None,
        "subject": text_or_none(item.get("subject")),
        "sender_id": integer(item.get("sender_id")),
        "suppression_group_id": integer(item.get("suppression_group_id")),
        "send_to": {
            "list_ids": item.get("list_ids") or [],
            "segment_ids": item.get("segment_ids") or [],
        },
        "created_at": None,
        "updated_at": None,
        **object_columns(item, LEGACY, synced_at),
    }
