"""Pydantic models of SendGrid's Event Webhook events: one model per event type.

The models are the single definition of the event tables: `shared.event_records` lays out
each table's columns from its model's fields, and `shared.tables` types them. They are
tolerant where SendGrid is inconsistent in practice (see the reference's "documented vs
observed" table): `attempt` as text or number, `tls` as 0/1 or boolean, `timestamp` in
seconds or milliseconds, `category` as a string or an array, `pool` and `url_offset` as
objects, `sg_event_id` as opaque text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.json_codec import canonical_json

# A timestamp above this is in milliseconds (1e11 s is the year 5138).
_MILLISECONDS_THRESHOLD = 100_000_000_000


def to_utc(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("timestamp must be a unix time, not a boolean")
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > _MILLISECONDS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("timestamp is out of range") from None
    return value


_INT64 = range(-(2**63), 2**63)


def lenient_int(value: object) -> object:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        raise ValueError("integer is out of the 64-bit range a BIGINT column holds")
    return value


def lenient_bool(value: object) -> object:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return bool(int(str(value)))
    return value


def category_list(value: object) -> object:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item if isinstance(item, str) else json.dumps(item) for item in value]
    return value


UnixTime = Annotated[datetime, BeforeValidator(to_utc)]
LenientInt = Annotated[int | None, BeforeValidator(lenient_int)]
LenientBool = Annotated[bool | None, BeforeValidator(lenient_bool)]
# Opaque identifiers arrive as numbers in some payloads (pool.id, phase_id): the models
# coerce numbers to text (`coerce_numbers_to_str`), which pydantic does without Python calls.
Text = str | None
Categories = Annotated[list[str], BeforeValidator(category_list)]


@dataclass(frozen=True)
class Nested:
    """An object SendGrid nests in an event whose members are stored as the model's own
    columns: `fields` maps a member to its field. `scalar`: the field a bare number or
    string in place of the object goes to (`"url_offset": 2`)."""

    key: str
    fields: dict[str, str]
    scalar: str | None = None


class WebhookEvent(BaseModel):
    """Fields every event type may carry (delivery, engagement and Marketing Campaigns)."""

    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, frozen=True, coerce_numbers_to_str=True
    )

    # Declared once, read by the flattening below and by the ingest service's fast path.
    nested: ClassVar[tuple[Nested, ...]] = ()

    event: str
    email: str | None = None
    timestamp: UnixTime
    sg_event_id: Text = None
    sg_message_id: Text = None
    category: Categories = Field(default_factory=list)
    asm_group_id: LenientInt = None
    marketing_campaign_id: LenientInt = None
    marketing_campaign_name: Text = None
    marketing_campaign_version: Text = None
    marketing_campaign_split_id: LenientInt = None
    singlesend_id: Text = None
    singlesend_name: Text = None
    template_id: Text = None
    template_hash: Text = None
    template_version_id: Text = None
    sg_template_id: Text = None
    sg_template_name: Text = None
    sg_content_type: Text = None
    sg_user_id: LenientInt = None
    mc_stats: Text = None
    phase_id: Text = None
    post_type: Text = None
    send_at: Text = None
    newsletter: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten_nested(cls, data: Any) -> Any:
        """A nested object's members replace the fields they map to; anything else in its
        place (null, a list) is ignored, as is the object's absence."""
        if not cls.nested or not isinstance(data, dict):
            return data
        for nested in cls.nested:
            value = data.get(nested.key)
            if isinstance(value, dict):
                data = {**data, **{field: value.get(key) for key, field in nested.fields.items()}}
            elif nested.scalar is not None and isinstance(value, int | str):
                data = {**data, nested.scalar: value}
        return data


class _SmtpEvent(WebhookEvent):
    smtp_id: Text = Field(None, alias="smtp-id")


class ProcessedEvent(_SmtpEvent):
    nested = (Nested("pool", {"name": "pool_name", "id": "pool_id"}),)

    pool_name: Text = None
    pool_id: Text = None


class DroppedEvent(_SmtpEvent):
    reason: Text = None
    status: Text = None


class DeliveredEvent(_SmtpEvent):
    response: Text = None
    ip: Text = None
    tls: LenientBool = None
    cert_err: LenientBool = None


class DeferredEvent(_SmtpEvent):
    response: Text = None
    reason: Text = None
    attempt: LenientInt = None
    ip: Text = None
    tls: LenientBool = None
    domain: Text = None
    from_address: Text = Field(None, alias="from")


class BounceEvent(_SmtpEvent):
    type: Text = None  # "bounce" (hard) or "blocked" (soft); "expired" has been seen
    bounce_classification: Text = None
    reason: Text = None
    status: Text = None
    ip: Text = None
    tls: LenientBool = None
    cert_err: LenientBool = None


class OpenEvent(WebhookEvent):
    ip: Text = None
    useragent: Text = None
    sg_machine_open: LenientBool = None


class ClickEvent(WebhookEvent):
    nested = (
        Nested(
            "url_offset",
            {"index": "url_offset_index", "type": "url_offset_type"},
            scalar="url_offset_index",
        ),
    )

    ip: Text = None
    useragent: Text = None
    url: Text = None
    url_offset_index: LenientInt = None
    url_offset_type: Text = None


class SpamReportEvent(_SmtpEvent):
    ip: Text = None


class UnsubscribeEvent(_SmtpEvent):
    pass


class GroupSubscriptionEvent(_SmtpEvent):
    ip: Text = None
    useragent: Text = None
    url: Text = None


class AccountStatusChangeEvent(WebhookEvent):
    type: Text = None  # compliance_suspend, compliance_deactivate, compliance_ban, reactivate


# wire value of `event` -> (table name, model). Table names follow Segment's SendGrid source.
EVENT_TYPES: dict[str, tuple[str, type[WebhookEvent]]] = {
    "processed": ("processed", ProcessedEvent),
    "dropped": ("dropped", DroppedEvent),
    "delivered": ("delivered", DeliveredEvent),
    "deferred": ("deferred", DeferredEvent),
    "bounce": ("bounce", BounceEvent),
    "open": ("_open", OpenEvent),
    "click": ("click", ClickEvent),
    "spamreport": ("spam_report", SpamReportEvent),
    "unsubscribe": ("unsubscribe", UnsubscribeEvent),
    "group_unsubscribe": ("group_unsubscribe", GroupSubscriptionEvent),
    "group_resubscribe": ("group_resubscribe", GroupSubscriptionEvent),
    "account_status_change": ("account_status_change", AccountStatusChangeEvent),
}

EVENT_TABLES: tuple[str, ...] = tuple(table for table, _ in EVENT_TYPES.values())

# Keys SendGrid itself sends. Anything else on an event is a custom (unique) arg.
KNOWN_KEYS: frozenset[str] = frozenset(
    {"event", "nlvx_campaign_id", "nlvx_user_id", "nlvx_send_id"}
    | {nested.key for _, model in EVENT_TYPES.values() for nested in model.nested}
    | {
        field.alias or name
        for _, model in EVENT_TYPES.values()
        for name, field in model.model_fields.items()
    }
)


def event_id(event: dict[str, Any]) -> str:
    """The de-duplication key: `sg_event_id`, or a hash of the event's canonical content."""
    sg_event_id = event.get("sg_event_id")
    if isinstance(sg_event_id, str) and sg_event_id:
        return sg_event_id
    return "sha256:" + hashlib.sha256(canonical_json(event).encode()).hexdigest()


# The custom args' keys of an event, by the sequence of its keys: a sender's events of one
# type carry the same keys, so the keys are sorted out once per shape rather than per event.
# Bounded: a sender inventing keys only empties it now and then.
_CUSTOM_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}
_CUSTOM_KEYS_MAX = 4096


def custom_args(event: dict[str, Any]) -> dict[str, Any]:
    """The event's keys SendGrid does not define (its custom args), in the event's order."""
    shape = tuple(event)
    keys = _CUSTOM_KEYS.get(shape)
    if keys is None:
        if len(_CUSTOM_KEYS) >= _CUSTOM_KEYS_MAX:
            _CUSTOM_KEYS.clear()
        keys = _CUSTOM_KEYS[shape] = tuple(key for key in shape if key not in KNOWN_KEYS)
    return {key: event[key] for key in keys}
