"""From a webhook body to records: decoding, JSON parsing, per-event validation.

A body that is not a JSON array of objects is refused as a whole (400). Inside a good array,
an event of an unknown type or one that fails validation becomes a `rejected` row with the
reason, and the rest of the batch is stored: a non-2xx would make SendGrid resend the whole
batch for a day.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from pydantic import ValidationError

from shared.errors import BadRequest, PayloadTooLarge
from shared.event_records import EVENT_LAYOUTS, EventLayout, EventRecord, Origin
from shared.event_values import ValuesReader, values_reader
from shared.events import EVENT_TYPES, custom_args, event_id
from shared.json_codec import canonical_json, dump_json, load_json, load_json_objects


@dataclass
class RejectedRow:
    id: str
    reason: str
    event: str | None
    payload: bytes

    @classmethod
    def of(cls, reason: str, payload: bytes, event: str | None = None) -> RejectedRow:
        return cls(hashlib.sha256(payload).hexdigest(), reason, event, payload)


@dataclass(frozen=True)
class _EventParsing:
    """What reading one wire event type takes: its table's layout, and the reader of its
    values without pydantic (None when some value always needs the model)."""

    layout: EventLayout
    read_values: ValuesReader | None


# Wire value of `event` -> how to read it: one look-up per event. Records are built here,
# in the parser, rather than by the writer, whose work every request waits for.
_PARSING = {
    kind: _EventParsing(layout, values_reader(layout.model, layout.value_fields))
    for kind, layout in ((kind, EVENT_LAYOUTS[table]) for kind, (table, _) in EVENT_TYPES.items())
}


@dataclass
class ParsedBatch:
    rows: dict[str, list[EventRecord]] = field(default_factory=dict)  # table -> records
    rejected: list[RejectedRow] = field(default_factory=list)
    # When the request was received; the `received_at` of its records.
    received_at: datetime | None = None
    # Where its events came from: the webhook, or a backfill from Email Logs.
    origin: Origin = "webhook"

    @property
    def event_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


_BATCH_ENCODER = msgspec.msgpack.Encoder()
_BATCH_DECODER = msgspec.msgpack.Decoder(ParsedBatch)


def parse_packed(body: bytes, received_at: datetime, max_events: int) -> bytes:
    """`parse_body`, its batch as MessagePack: what a parser process sends back."""
    return _BATCH_ENCODER.encode(parse_body(body, received_at, max_events))


def unpack_batch(packed: bytes) -> ParsedBatch:
    """The batch `parse_packed` made, as `parse_body` returned it (records as tuples, times
    as UTC datetimes)."""
    return _BATCH_DECODER.decode(packed)


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


def parse_body(
    body: bytes, received_at: datetime, max_events: int = 50_000, origin: Origin = "webhook"
) -> ParsedBatch:
    read = load_json_objects(body)
    if read is None:
        document, texts = _document(body), None
    else:
        document, texts = read
    if len(document) > max_events:
        raise PayloadTooLarge(
            f"the body holds {len(document)} events, more than the limit of {max_events}"
        )
    # NUL can only arrive escaped; PostgreSQL text and jsonb cannot hold it.
    may_hold_nul = b"\\u0000" in body
    batch = ParsedBatch(received_at=received_at, origin=origin)
    for position, item in enumerate(document):
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
        table, row = _event_row(
            item, dump_json(item) if texts is None else texts[position], received_at, batch
        )
        if row is not None:
            batch.rows.setdefault(table, []).append(row)
    return batch


def _document(body: bytes) -> list[dict[str, Any]]:
    """The body read by the general parser, or the 400 saying why it is not an array of
    event objects."""
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
    return document


def _event_row(
    item: dict[str, Any], raw: str, received_at: datetime, batch: ParsedBatch
) -> tuple[str, EventRecord | None]:
    kind = item.get("event")
    parsing = _PARSING.get(kind) if type(kind) is str else None
    if parsing is None:
        reason = (
            "the event has no 'event' field" if kind is None else f"unknown event type {kind!r}"
        )
        batch.rejected.append(RejectedRow.of(reason, _payload(item), _text_or_none(kind)))
        return "", None
    layout = parsing.layout
    values = parsing.read_values(item) if parsing.read_values is not None else None
    if values is None:
        try:
            event = layout.model.model_validate(item)
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'event'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            )
            batch.rejected.append(
                RejectedRow.of(f"invalid {kind} event: {reason}", _payload(item), kind)
            )
            return "", None
        values = list(layout.values_of(event.__dict__))
    for i in layout.json_positions:
        if values[i] is not None:
            values[i] = dump_json(values[i])
    sg_event_id = item.get("sg_event_id")
    # In the order of `EventLayout.columns`: id, the values, custom_args, raw, received_at,
    # origin.
    return layout.table, (
        sg_event_id if type(sg_event_id) is str and sg_event_id else event_id(item),
        *values,
        dump_json(custom_args(item)),
        raw,
        received_at,
        batch.origin,
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
