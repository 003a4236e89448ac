"""SendGrid objects as rows of the source's `lists`, `segments`, `recipients`, `campaigns`.

Both APIs fill the same tables; `api` says which one a row came from, and `raw` keeps the
object exactly as SendGrid sent it, so nothing is lost to the typed columns.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.json_codec import dump_json

MARKETING = "marketing"  # the new API, /v3/marketing/*
LEGACY = "legacy"  # Legacy Marketing Campaigns, /v3/contactdb/* and /v3/campaigns

Row = dict[str, Any]
# Custom field name (lower-cased) -> SendGrid field type: "Text", "Number" or "Date".
FieldTypes = dict[str, str]

# Export columns that have a typed column of their own in `recipients`.
_CONTACT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "address_line_1",
    "address_line_2",
    "city",
    "state_province_region",
    "postal_code",
    "country",
    "phone_number",
    "whatsapp",
    "line",
    "facebook",
    "unique_name",
    "external_id",
)
_LEGACY_BUILT_IN = {"email", "first_name", "last_name"}


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


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
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


def _common(raw: Any, api: str, synced_at: datetime) -> Row:
    return {"api": api, "raw": raw, "synced_at": synced_at, "deleted_at": None}


def list_row(item: Row, synced_at: datetime) -> Row:
    return {
        "id": str(item["id"]),
        "name": _text(item.get("name")),
        "contact_count": _integer(item.get("contact_count")),
        **_common(item, MARKETING, synced_at),
    }


def legacy_list_row(item: Row, synced_at: datetime) -> Row:
    return {
        "id": str(item["id"]),
        "name": _text(item.get("name")),
        "contact_count": _integer(item.get("recipient_count")),
        **_common(item, LEGACY, synced_at),
    }


def segment_row(item: Row, synced_at: datetime) -> Row:
    status = item.get("status")
    return {
        "id": str(item["id"]),
        "name": _text(item.get("name")),
        "contacts_count": _integer(item.get("contacts_count")),
        "parent_list_ids": item.get("parent_list_ids") or [],
        "query_version": _text(item.get("query_version")),
        "query_validation": _text(status.get("query_validation"))
        if isinstance(status, dict)
        else None,
        "created_at": parse_timestamp(item.get("created_at")),
        "updated_at": parse_timestamp(item.get("updated_at")),
        "sample_updated_at": parse_timestamp(item.get("sample_updated_at")),
        "next_sample_update": parse_timestamp(item.get("next_sample_update")),
        **_common(item, MARKETING, synced_at),
    }


def legacy_segment_row(item: Row, synced_at: datetime) -> Row:
    list_id = item.get("list_id")
    return {
        "id": str(item["id"]),
        "name": _text(item.get("name")),
        "contacts_count": _integer(item.get("recipient_count")),
        "parent_list_ids": [str(list_id)] if list_id is not None else [],
        "query_version": None,
        "query_validation": None,
        "created_at": None,
        "updated_at": None,
        "sample_updated_at": None,
        "next_sample_update": None,
        **_common(item, LEGACY, synced_at),
    }


def campaign_row(item: Row, synced_at: datetime) -> Row:
    """A single send: the list entry merged with its detail (`send_to`, `email_config`)."""
    config = item.get("email_config")
    if not isinstance(config, dict):
        config = {}
    return {
        "id": str(item["id"]),
        "name": _text(item.get("name")),
        "status": _text(item.get("status")),
        "categories": item.get("categories") or [],
        "send_at": parse_timestamp(item.get("send_at")),
        "is_abtest": item.get("is_abtest") if isinstance(item.get("is_abtest"), bool) else None,
        "subject": _text(config.get("subject")),
        "sender_id": _integer(config.get("sender_id")),
        "suppression_group_id": _integer(config.get("suppression_group_id")),
        "send_to": item.get("send_to"),
        "created_at": parse_timestamp(item.get("created_at")),
        "updated_at": parse_timestamp(item.get("updated_at")),
        **_common(item, MARKETING, synced_at),
    }


def legacy_campaign_row(item: Row, synced_at: datetime) -> Row:
    return {
        "id": str(item["id"]),
        "name": _text(item.get("title")),
        "status": _text(item.get("status")),
        "categories": item.get("categories") or [],
        "send_at": None,
        "is_abtest": None,
        "subject": _text(item.get("subject")),
        "sender_id": _integer(item.get("sender_id")),
        "suppression_group_id": _integer(item.get("suppression_group_id")),
        "send_to": {
            "list_ids": item.get("list_ids") or [],
            "segment_ids": item.get("segment_ids") or [],
        },
        "created_at": None,
        "updated_at": None,
        **_common(item, LEGACY, synced_at),
    }


@dataclass(frozen=True)
class Records:
    """A page of rows as value tuples in the order of `columns`, JSON values already as text:
    what COPY and executemany take, built without a dict per row."""

    columns: tuple[str, ...]
    values: list[tuple[Any, ...]]


_CONTACT_RECORD_COLUMNS = (
    "contact_id",
    *_CONTACT_COLUMNS,
    "alternate_emails",
    "created_at",
    "updated_at",
    "custom_fields",
    "api",
    "raw",
    "synced_at",
    "deleted_at",
    "content_hash",
)


def content_hash(json_values: Iterable[str | None]) -> int:
    """A stable 64-bit hash (BIGINT) of a row's JSON values, as text: what a re-sync compares
    to tell a changed object from an unchanged one."""
    # One string and one digest per row: JSON text never holds \x1e or \x00 unescaped.
    return _text_hash("\x1e".join(["\x00" if value is None else value for value in json_values]))


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


def _iso_timestamp(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return parse_timestamp(value)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ContactRecords:
    """Builds `recipients` records straight from the contacts export's CSV values.

    A million contacts pass through here on a big account, so the positions of every column
    are worked out once per file header, and each contact costs one tuple, one dict for
    `raw` and its JSON, and no Python call per column.
    """

    columns = _CONTACT_RECORD_COLUMNS

    def __init__(self, header: Sequence[str], field_types: FieldTypes, synced_at: datetime) -> None:
        self.header = tuple(header)
        self.synced_at = synced_at
        missing = len(self.header)  # a column absent from the file reads the padding ""
        position = {name: i for i, name in enumerate(self.header)}
        self._key = position.get("contact_id", missing)
        self._texts = operator.itemgetter(
            *(position.get(column, missing) for column in _CONTACT_COLUMNS)
        )
        self._alternates = position.get("alternate_emails", missing)
        self._created = position.get("created_at", missing)
        self._updated = position.get("updated_at", missing)
        self._custom = [
            (name, i, kind)
            for i, name in enumerate(self.header)
            if (kind := field_types.get(name)) is not None
        ]

    def build(self, values: list[str]) -> tuple[Any, ...] | None:
        """One contact's record, or None for a record without a contact id."""
        raw = dict(zip(self.header, values, strict=True))
        values = [*values, ""]
        contact_id = values[self._key]
        if not contact_id:
            return None
        alternates = values[self._alternates].split(",")
        alternates_json = dump_json([email.strip() for email in alternates if email.strip()])
        custom_json = dump_json(
            {name: type_field_value(values[i], kind) for name, i, kind in self._custom}
        )
        raw_json = dump_json(raw)
        return (
            contact_id,
            *[value or None for value in self._texts(values)],
            alternates_json,
            _iso_timestamp(values[self._created]),
            _iso_timestamp(values[self._updated]),
            custom_json,
            MARKETING,
            raw_json,
            self.synced_at,
            None,
            # content_hash((alternates_json, custom_json, raw_json)), without its calls.
            _text_hash(f"{alternates_json}\x1e{custom_json}\x1e{raw_json}"),
        )

    def records(self, batch: Sequence[list[str]]) -> list[tuple[Any, ...]]:
        return [record for values in batch if (record := self.build(values)) is not None]


def legacy_recipient_row(item: Row, synced_at: datetime) -> Row:
    fields = item.get("custom_fields")
    if not isinstance(fields, list):
        fields = []
    custom = {
        str(field["name"]): type_field_value(field.get("value"), str(field.get("type", "text")))
        for field in fields
        if isinstance(field, dict) and field.get("name") not in _LEGACY_BUILT_IN
    }
    row: Row = {column: None for column in _CONTACT_COLUMNS}
    row.update(
        {
            "contact_id": str(item["id"]),
            "email": _text(item.get("email")),
            "first_name": _text(item.get("first_name")),
            "last_name": _text(item.get("last_name")),
            "alternate_emails": [],
            "created_at": parse_timestamp(item.get("created_at")),
            "updated_at": parse_timestamp(item.get("updated_at")),
            "custom_fields": custom,
            **_common(item, LEGACY, synced_at),
        }
    )
    return row
