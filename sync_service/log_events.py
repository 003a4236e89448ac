"""One Email Logs event as the Event Webhook sends that event.

`GET /v3/logs/{sg_message_id}` (tsg_logs_v3.yaml `EmailLogsGetMessageByIdResponse`) answers a
message with its `events[]`, whose names, fields and types follow the Event Webhook, with the
differences its OpenAPI file and more-apis.md §4.2 list. `webhook_event` undoes each one, so a
backfilled event goes through the webhook's validation and writer as the webhook's own copy
would, and the product's models (shared/events.py) read the same columns from both:

- `custom_args` is nested in Email Logs ("We deviate here from the Event Webhook schema by NOT
  merging custom args into the top level", `CustomArgs`); the webhook flattens them into the
  event, SendGrid's own field winning a clash (event-webhook.md §2.3);
- a block is `type: "blocked"` on the webhook (event-webhook.md §2.1, the reference's blocked
  sample); Email Logs' `BounceType` says `blocked`, its `EmailLogsMessageStatus` spells the same
  thing `block`, so both are read;
- `attempt` is a zero-based string in Email Logs (`DeferredEvent.attempt`), the webhook's is
  the number of attempts made (event-webhook.md §2.2, "the number of times SendGrid has
  attempted to deliver"), sent as a string of digits in practice (§2.4: `"5"`, `"1"`);
- `tls` is omitted unless 1 (`TlsEnabled`), real webhook `delivered` and `bounce` events carry
  it as 0 or 1 (event-webhook.md §2.2, "real delivered/bounce events carry ip and tls",
  a captured bounce with `tls: 0`);
- `sg_machine_open` is omitted when false (`SgMachineOpen`); the webhook's opens carry it,
  false included (the reference's open sample: `"sg_machine_open": false`);
- `category` is always an array (`EmailCategories`); the webhook sends a string for one
  category and an array for several (event-webhook.md §2.4, the reference's samples);
- the message's own fields (`to_email`, `category[]`, `asm_group_id`, `marketing_campaign_*`,
  `template_id`) fill in what an event lacks, for the event types the webhook reference says
  carry them (event-webhook.md §2.2); the rest of the message (`from_email`, `subject`,
  `api_key_id`, `client_ip`, `outbound_ip`, `teammate`, ...) is on no webhook event.

Email Logs event types the webhook does not have (`received`, `cancel_drop`; the webhook's
types are event-webhook.md §2.1's, and shared/events.py has a table for each of those and no
other) are not guessed into a table: they come back as `UnmappedEvent`s with a reason, for the
`rejected` table, as the webhook receiver keeps an event of a type it has no table for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.events import EVENT_TYPES, KNOWN_KEYS

# Email Logs event types with no Event Webhook counterpart, and why each is kept aside.
_NOT_ON_THE_WEBHOOK = {
    "received": (
        "Email Logs' 'received' event (SendGrid accepted the send request) has no Event Webhook"
        " counterpart, so there is no table for it"
    ),
    "cancel_drop": (
        "Email Logs' 'cancel_drop' event has no Event Webhook counterpart (its reference lists"
        " no such event), so there is no table for it; it is not stored as 'dropped', which"
        " is a different event"
    ),
}

# The message-level fields the webhook reference puts on every event type of a message
# (event-webhook.md §2.2: `marketing_campaign_id / _name` on all; §2.2's Marketing Campaigns
# list: `marketing_campaign_version`, `marketing_campaign_split_id`, `template_id`).
_ON_EVERY_EVENT = (
    "marketing_campaign_id",
    "marketing_campaign_name",
    "marketing_campaign_split_id",
    "marketing_campaign_version",
    "template_id",
)
# `asm_group_id` is on every type but spamreport and unsubscribe (event-webhook.md §2.2).
_WITHOUT_ASM_GROUP = frozenset({"spamreport", "unsubscribe"})
# The types whose real webhook events carry `tls` as 0 or 1 (event-webhook.md §2.2).
_TLS_ALWAYS_SENT = frozenset({"delivered", "bounce"})
# Email Logs' spelling of a block (`EmailLogsMessageStatus`) and the webhook's (`BounceType`).
_BLOCK_TYPES = {"block": "blocked"}


@dataclass(frozen=True)
class MappedEvent:
    """An event in the Event Webhook's shape, for the webhook's validation and writer."""

    event: dict[str, Any]
    # Where the writer puts it (shared/events.py EVENT_TYPES).
    table: str
    # Custom args the webhook would not have flattened: their key is a field SendGrid sends
    # (shared/events.py KNOWN_KEYS) or one the event already has. On the webhook SendGrid's
    # value wins (event-webhook.md §2.3) and the custom arg is gone; here it stays visible.
    shadowed_custom_args: dict[str, Any] = field(default_factory=dict)
    # Fields of the Email Logs event the webhook does not send (e.g. `message` on a drop,
    # `date` on an unsubscribe): on the event they would read as custom args, so they are
    # kept here instead.
    logs_only: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnmappedEvent:
    """An Email Logs event with no Event Webhook counterpart: for `rejected`, with `reason`."""

    kind: str | None
    reason: str
    # The Email Logs event as SendGrid gave it, with its message's `sg_message_id` and
    # recipient where it has none, so the rejected row says which message it was.
    payload: dict[str, Any]


def webhook_events(message: Mapping[str, Any]) -> Iterator[MappedEvent | UnmappedEvent]:
    """Every event of an Email Logs message detail, in the order SendGrid listed them."""
    events = message.get("events")
    for event in events if isinstance(events, list) else []:
        if isinstance(event, Mapping):
            yield webhook_event(message, event)
        else:
            reason = "an Email Logs event that is not a JSON object"
            yield UnmappedEvent(None, reason, _context(message, {"event_value": event}))


def webhook_event(
    message: Mapping[str, Any], event: Mapping[str, Any]
) -> MappedEvent | UnmappedEvent:
    """`event` (one of `message["events"]`) as the Event Webhook sends it."""
    kind = event.get("event")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        reason = _NOT_ON_THE_WEBHOOK.get(kind) if isinstance(kind, str) else None
        if reason is None:
            reason = (
                "an Email Logs event without an 'event' field"
                if kind is None
                else f"an Email Logs event of a type the Event Webhook does not have: {kind!r}"
            )
        return UnmappedEvent(
            kind if isinstance(kind, str) else None, reason, _context(message, event)
        )
    table = EVENT_TYPES[kind][0]
    mapped: dict[str, Any] = _message_fields(message, kind)
    logs_only: dict[str, Any] = {}
    for key, value in event.items():
        if key == "custom_args":
            continue
        if key in KNOWN_KEYS:
            mapped[key] = value
        else:
            logs_only[key] = value
    _fill_recipient(mapped, message)
    _normalise(mapped, kind)
    shadowed = _flatten_custom_args(mapped, message, event)
    # Real webhook posts have their keys in alphabetical order (event-webhook.md §1, "Byte
    # framing"); the stored raw event then reads like the webhook's own.
    return MappedEvent(dict(sorted(mapped.items())), table, shadowed, logs_only)


def _message_fields(message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    fields = {key: message[key] for key in _ON_EVERY_EVENT if message.get(key) is not None}
    if kind not in _WITHOUT_ASM_GROUP and message.get("asm_group_id") is not None:
        fields["asm_group_id"] = message["asm_group_id"]
    categories = message.get("category")
    if isinstance(categories, list) and categories:
        fields["category"] = categories
    if message.get("sg_message_id") is not None:
        fields["sg_message_id"] = message["sg_message_id"]
    return fields


def _fill_recipient(mapped: dict[str, Any], message: Mapping[str, Any]) -> None:
    # A message has one recipient (`to_email`), and Email Logs' drop events may have an
    # empty `email` (`DroppedEvent.email`); the webhook's events always name the recipient.
    if not mapped.get("email") and message.get("to_email"):
        mapped["email"] = message["to_email"]


def _normalise(mapped: dict[str, Any], kind: str) -> None:
    if "category" in mapped:
        mapped["category"] = _webhook_category(mapped["category"])
    if kind == "bounce" and isinstance(mapped.get("type"), str):
        mapped["type"] = _BLOCK_TYPES.get(mapped["type"], mapped["type"])
    if kind == "deferred" and "attempt" in mapped:
        mapped["attempt"] = _attempts_made(mapped["attempt"])
    if kind in _TLS_ALWAYS_SENT and "tls" not in mapped:
        mapped["tls"] = 0
    if kind == "open" and "sg_machine_open" not in mapped:
        mapped["sg_machine_open"] = False


def _webhook_category(value: object) -> object:
    # One category is a string on the webhook, several an array, and none the empty array
    # Marketing Campaigns sends (event-webhook.md §2.4); anything else is left as it came.
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return value


def _attempts_made(value: object) -> object:
    # Zero-based in Email Logs (`DeferredEvent.attempt`, "zero-based counting"): the first
    # deferral is attempt "0" there and one attempt made on the webhook. Kept a string of
    # digits, as the webhook sends it (event-webhook.md §2.4); a value that is no count is
    # left for the webhook's validation to judge.
    if isinstance(value, str) and value.isdigit():
        return str(int(value) + 1)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value + 1)
    return value


def _flatten_custom_args(
    mapped: dict[str, Any], message: Mapping[str, Any], event: Mapping[str, Any]
) -> dict[str, Any]:
    """Put the custom args at the event's top level as the webhook does; return the ones
    whose key SendGrid uses itself (`KNOWN_KEYS`) or the event already has. Shadowing a known
    key even where this event lacks it keeps a sender's value out of SendGrid's column."""
    args: dict[str, Any] = {}
    for source in (message.get("custom_args"), event.get("custom_args")):
        if isinstance(source, Mapping):
            args.update(source)  # the event's own copy wins over the message's
    shadowed: dict[str, Any] = {}
    for key, value in args.items():
        if key in KNOWN_KEYS or key in mapped:
            shadowed[key] = value
        else:
            mapped[key] = value
    return shadowed


def _context(message: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    payload = dict(event)
    if "sg_message_id" not in payload and message.get("sg_message_id") is not None:
        payload["sg_message_id"] = message["sg_message_id"]
    if not payload.get("email") and message.get("to_email"):
        payload["email"] = message["to_email"]
    return dict(sorted(payload.items()))
