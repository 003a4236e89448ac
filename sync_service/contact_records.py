"""`recipients` rows: contacts of the new API built straight from the export's CSV values
(`ContactRecords`, the sync's hot path), and recipients of the legacy API as dict rows."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.json_codec import dump_json
from sync_service.object_records import JSON_SEPARATOR as _SEP
from sync_service.object_records import Row, joined_json_hash
from sync_service.records import (
    LEGACY,
    MARKETING,
    FieldTypes,
    object_columns,
    parse_timestamp,
    text_or_none,
    type_field_value,
)

# Export columns that have a typed column of their own in `recipients`.
CONTACT_TEXT_COLUMNS = (
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

_CONTACT_RECORD_COLUMNS = (
    "contact_id",
    *CONTACT_TEXT_COLUMNS,
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
            *(position.get(column, missing) for column in CONTACT_TEXT_COLUMNS)
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
            # content_hash((alternates_json, custom_json, raw_json)), without its calls: the
            # JSON columns in the order of `columns`, none of them NULL.
            joined_json_hash(f"{alternates_json}{_SEP}{custom_json}{_SEP}{raw_json}"),
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
    row: Row = {column: None for column in CONTACT_TEXT_COLUMNS}
    row.update(
        {
            "contact_id": str(item["id"]),
            "email": text_or_none(item.get("email")),
            "first_name": text_or_none(item.get("first_name")),
            "last_name": text_or_none(item.get("last_name")),
            "alternate_emails": [],
            "created_at": parse_timestamp(item.get("created_at")),
            "updated_at": parse_timestamp(item.get("updated_at")),
            "custom_fields": custom,
            **object_columns(item, LEGACY, synced_at),
        }
    )
    return row
