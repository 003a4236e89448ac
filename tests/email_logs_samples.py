"""The Event Webhook reference's sample events (tests/data/sendgrid_docs_events.json) as
messages of the fake SendGrid's Email Logs, one message each: what a backfill reads back is
then compared field by field with the webhook's own copy of the same event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.fake_sendgrid.email_logs import EmailLogsAccount
from tests.fake_sendgrid.logs_messages import NOT_IN_EMAIL_LOGS
from tests.webhook_helpers import sample_events

JSON = dict[str, Any]


# What real webhook events carry and the reference's transcribed samples leave out
# (event-webhook.md §2.2: "real delivered/bounce events carry ip and tls"; a captured bounce
# has `tls: 0`). Email Logs requires `ip` on a delivery (`DeliveredEvent`).
_AS_SENT: dict[str, JSON] = {
    "delivered": {"ip": "149.72.154.232", "tls": 0},
    "bounce": {"tls": 0},
}


def samples_in_email_logs() -> list[JSON]:
    """The samples Email Logs can hold, as real webhook posts carry them (`_AS_SENT`), without
    the fields Email Logs has no place for: not `account_status_change` (an account's event,
    on no message), not the Single Send open (its timestamp is in milliseconds; Email Logs'
    are seconds, `UnixEpochSeconds`), not the legacy newsletter unsubscribe and the unique
    args example (they have no message id or no event id, which every Email Logs event has)."""
    kept = []
    for sample in sample_events():
        if sample["event"] == "account_status_change":
            continue
        if "sg_message_id" not in sample or "sg_event_id" not in sample:
            continue
        if int(sample["timestamp"]) > 100_000_000_000:
            continue
        event = {k: v for k, v in sample.items() if k not in NOT_IN_EMAIL_LOGS}
        kept.append({**_AS_SENT.get(event["event"], {}), **event})
    return kept


def add_samples(account: EmailLogsAccount, created_at: datetime) -> list[tuple[str, JSON]]:
    """Each sample as its own message, created at `created_at`; (message id, sample) pairs.
    Several samples share a message id; the later ones get a suffix on the message's, each
    event keeping its own `sg_message_id`, so one sample's message fields never reach
    another's event."""
    added: list[tuple[str, JSON]] = []
    for n, sample in enumerate(samples_in_email_logs()):
        sg_message_id = sample["sg_message_id"]
        if sg_message_id in account.messages:
            sg_message_id = f"{sg_message_id}~{n}"
        account.add(sg_message_id, [sample], created_at=created_at)
        added.append((sg_message_id, sample))
    return added
