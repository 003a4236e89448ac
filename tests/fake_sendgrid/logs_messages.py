"""Email Logs messages (tsg_logs_v3.yaml `EmailLogsGetMessageByIdResponse`) made of the events
the Event Webhook sends, so a test can read a message back and compare what the product makes
of its events with the webhook's own copies, field by field.

`logs_event` turns one webhook event into its Email Logs form, as the OpenAPI file describes
the differences (more-apis.md §4.2): custom args nested under `custom_args` (`CustomArgs`),
`category` always an array (`EmailCategories`), `attempt` zero-based (`DeferredEvent`), `tls`
only when 1 (`TlsEnabled`), `sg_machine_open` only when true (`SgMachineOpen`), the pool id a
numeric string (`OutboundIpPoolMetadata`), an unsubscribe's `date` (`UnsubscribeEvent`), and
the Marketing Campaigns fields on the message rather than the event. The webhook's keys are
spelled out here from its reference, not imported from the product: a key the product forgets
must fail the tests, not be echoed by the fake.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fake_sendgrid.payloads import JSON

# The keys SendGrid itself puts on webhook events (event-webhook.md §2.2 and its Marketing
# Campaigns list); any other key of a webhook event is a custom arg.
WEBHOOK_KEYS = frozenset(
    {
        "email", "event", "timestamp", "sg_event_id", "sg_message_id", "smtp-id", "category",
        "asm_group_id", "pool", "reason", "response", "attempt", "status", "tls", "ip",
        "bounce_classification", "type", "useragent", "sg_machine_open", "url", "url_offset",
        "cert_err", "send_at", "domain", "from", "sg_content_type",
        *("marketing_campaign_id", "marketing_campaign_name", "marketing_campaign_version"),
        *("marketing_campaign_split_id", "template_id"),
    }
)  # fmt: skip
# What Email Logs keeps per message, not per event (`EmailLogsGetMessageByIdResponse`).
MESSAGE_KEYS = (
    "marketing_campaign_id",
    "marketing_campaign_name",
    "marketing_campaign_split_id",
    "marketing_campaign_version",
    "template_id",
)
# Webhook fields Email Logs has no place for (legacy newsletters, the MC event's internals).
NOT_IN_EMAIL_LOGS = frozenset({"newsletter", "post_type", "sg_user_id"})
# `EmailLogsMessageStatus`, from the latest event that sets one.
_STATUS_OF = {
    "processed": "processed",
    "dropped": "dropped",
    "cancel_drop": "dropped",
    "deferred": "deferred",
    "delivered": "delivered",
    "open": "delivered",
    "click": "delivered",
}


def logs_event(webhook: JSON) -> tuple[JSON, JSON]:
    """`webhook` as an Email Logs event, and the message fields it carried (MESSAGE_KEYS)."""
    refused = sorted(NOT_IN_EMAIL_LOGS & webhook.keys())
    if refused:
        raise ValueError(f"Email Logs has no place for {refused}: leave them out of the test")
    event: JSON = {}
    message: JSON = {}
    custom: dict[str, str] = {}
    for key, value in webhook.items():
        if key in MESSAGE_KEYS:
            message[key] = value
        elif key not in WEBHOOK_KEYS:
            custom[key] = str(value)
        elif key == "category":
            event[key] = [value] if isinstance(value, str) else list(value)
        elif key == "attempt":
            event[key] = str(int(value) - 1)
        elif key == "tls":
            if value in (1, True):
                event[key] = 1
        elif key == "sg_machine_open":
            if value is True:
                event[key] = True
        elif key == "pool" and isinstance(value, dict):
            event[key] = {**value, "id": str(value["id"])}
        else:
            event[key] = value
    if custom:
        event["custom_args"] = custom
    if webhook.get("event") == "unsubscribe":
        # "A date in the format YYYY-MM-DD, after converting the timestamp to the customer's
        # timezone" (`CustomerTimezoneDate`); the fake's customer is in UTC.
        event["date"] = datetime.fromtimestamp(int(webhook["timestamp"]), UTC).date().isoformat()
    return event, message


def logs_message(
    sg_message_id: str,
    webhook_events: list[JSON],
    *,
    to_email: str | None = None,
    status: str | None = None,
    raw_events: list[JSON] | None = None,
    **fields: Any,
) -> JSON:
    """A message detail holding `webhook_events` in their Email Logs form (plus `raw_events`,
    already in that form), with the message-level fields they carried; `fields` override."""
    events: list[JSON] = []
    detail: JSON = {}
    for webhook in webhook_events:
        event, message = logs_event(webhook)
        events.append(event)
        detail.update(message)
    events.extend(raw_events or [])
    categories: list[str] = next((e["category"] for e in events if "category" in e), [])
    customs = next((e["custom_args"] for e in events if "custom_args" in e), None)
    recipient = to_email or next((e["email"] for e in events if e.get("email")), "")
    detail = {
        "from_email": "sender@example.com",
        "sg_message_id": sg_message_id,
        "subject": f"Message {sg_message_id}",
        "to_email": recipient,
        "status": status or message_status(events),
        "teammate": "",
        "api_key_id": "A1b2C3d4E5f6G7h8I9j0kL",
        "client_ip": "192.168.1.1",
        "category": categories,
        "outbound_ip": "149.72.1.1",
        "outbound_ip_type": "dedicated",
        **({"custom_args": customs} if customs is not None else {}),
        **detail,
        "events": events,
        **fields,
    }
    return detail


def message_status(events: list[JSON]) -> str:
    status = "processed"
    for event in sorted(events, key=lambda e: int(e.get("timestamp", 0))):
        kind = event.get("event")
        if kind == "bounce":
            status = "blocked" if event.get("type") in ("blocked", "block") else "bounced"
        else:
            status = _STATUS_OF.get(str(kind), status)
    return status


def listed(detail: JSON, created_at: datetime) -> JSON:
    """The message as `POST /v3/logs` lists it (`EmailLogsMessage`)."""
    row = {
        key: detail[key] for key in ("from_email", "sg_message_id", "subject", "to_email", "status")
    }
    reason = next((e["reason"] for e in reversed(detail["events"]) if "reason" in e), None)
    if reason is not None:
        row["reason"] = reason
    row["sg_message_id_created_at"] = iso_seconds(created_at)
    return row


def iso_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
