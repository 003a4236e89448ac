"""From a webhook body to records: decoding, JSON parsing, per-event validation.

A body that is not a JSON array of objects is refused as a whole (400). Inside a good array,
an event of an unknown type or one that fails validation becomes a `rejected` row with the
reason, and the rest of the batch is stored: a non-2xx would make SendGrid resend the whole
batch for a day.
"""

from __future__ import annotations

import hashlib
import json
import operator
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ingest_service.event_values import ValuesReader, values_reader
from shared.errors import BadRequest, PayloadTooLarge
from shared.events import EVENT_TYPES, WebhookEvent, custom_args, event_id
from shared.json_codec import canonical_json, dump_json, load_json
from shared.tables import event_json_fields, event_value_fields


@dataclass
class RejectedRow:
    id: str
    reason: str
    event: str | None
    payload: bytes

    @classmethod
    def of(cls, reason: str, payload: bytes, event: str | None = None) -> RejectedRow:
        return cls(hashlib.sha256(payload).hexdigest(), reason, event, payload)


# One event as the values of its table's columns, in column order, JSON values as text: what
# COPY and executemany take, built here in the request's worker thread rather than by the
# writer, whose work every request waits for.
EventRecord = tuple[Any, ...]
ID_AT = 0  # `id` is an event table's first column ...
RAW_AT = -2  # ... and `raw` its last but one, before `received_at`.


@dataclass(frozen=True)
class _Layout:
    values_of: Callable[[dict[str, Any]], tuple[Any, ...]]
    json_positions: tuple[int, ...]
    read_values: ValuesReader | None  # the values without pydantic, when none need coercion


def _layout(model: type[WebhookEvent]) -> _Layout:
    names = event_value_fields(model)
    json_fields = event_json_fields(model)
    return _Layout(
        operator.itemgetter(*names),
        tuple(i for i, name in enumerate(names) if name in json_fields),
        values_reader(model, names),
    )


_LAYOUTS = {model: _layout(model) for _, model in EVENT_TYPES.values()}


@dataclass
class ParsedBatch:
    rows: dict[str, list[EventRecord]] = field(default_factory=dict)  # table -> records
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo `Content-Encoding: gzip`, refusing output beyond `limit` (gzip bombs)."""
    if not encoding or encoding.strip().lower() == "identity":
        return body
    if encoding.strip().lower() not in ("gzip", "x-gzip"):
        raise BadRequest(f"Content-Encoding {encoding!r} is not supported; send gzip or nothing")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid gzip ({exc})") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body is larger than the limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return data


def parse_body(body: bytes, received_at: datetime, max_events: int = 50_000) -> ParsedBatch:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        document = load_json(body)
    except json.JSONDecodeError as exc:
        if "depth limit" in exc.msg:
            raise BadRequest("the body is not valid JSON: nested too deeply") from None
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (RecursionError, ValueError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BadRequest(f"the body is not valid JSON: {detail}") from None
    if not isinstance(document, list):
        raise BadRequest(
            f"the body must be a JSON array of events, got a JSON {_json_kind(document)}"
        )
    not_objects = [i for i, item in enumerate(document) if not isinstance(item, dict)]
    if not_objects:
        raise BadRequest(
            "the body must be a JSON array of event objects; "
            f"item {not_objects[0]} is a JSON {_json_kind(document[not_objects[0]])}"
        )
    if len(document) > max_events:
        raise PayloadTooLarge(
            f"the body holds {len(document)} events, more than the limit of {max_events}"
        )
    # NUL can only arrive escaped; PostgreSQL text and jsonb cannot hold it.
    may_hold_nul = b"\\u0000" in body
    batch = ParsedBatch()
    for item in document:
        if may_hold_nul and _holds_nul(item):
            kind = item.get("event")
            batch.rejected.append(
                RejectedRow.of(
                    "the event holds a NUL character (\\u0000), which cannot be stored",
                    _payload(item),
                    kind.replace("\x00", "") if isinstance(kind, str) else None,
                )
            )
            continue
        table, row = _event_row(item, received_at, batch)
        if row is not None:
            batch.rows.setdefault(table, []).append(row)
    return batch


def _event_row(
    item: dict[str, Any], received_at: datetime, batch: ParsedBatch
) -> tuple[str, EventRecord | None]:
    kind = item.get("event")
    known = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if known is None:
        reason = (
            "the event has no 'event' field" if kind is None else f"unknown event type {kind!r}"
        )
        batch.rejected.append(RejectedRow.of(reason, _payload(item), _text_or_none(kind)))
        return "", None
    table, model = known
    layout = _LAYOUTS[model]
    values = layout.read_values(item) if layout.read_values is not None else None
    if values is None:
        try:
            event = model.model_validate(item)
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'event'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            )
            batch.rejected.append(
                RejectedRow.of(f"invalid {kind} event: {reason}", _payload(item), kind)
            )
            return "", None
        # The models are flat: their fields are already the column values.
        values = layout.values_of(event.__dict__)
    if layout.json_positions:
        listed = list(values)
        for i in layout.json_positions:
            if listed[i] is not None:
                listed[i] = dump_json(listed[i])
        values = tuple(listed)
    return table, (
        event_id(item),
        *values,
        dump_json(custom_args(item)),
        dump_json(item),
        received_at,
    )


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _payload(item: dict[str, Any]) -> bytes:
    return canonical_json(item).encode()


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None if value is None else json.dumps(value)


def _json_kind(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )
