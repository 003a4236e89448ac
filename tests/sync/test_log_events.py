"""Email Logs events as the Event Webhook sends them: every event type of the reference's
samples read back through the fake SendGrid's Email Logs and compared field by field with the
webhook's own copy, validated by the product's model of its table; and each difference
Email Logs has from the webhook undone on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import EVENT_TYPES, DeferredEvent, custom_args
from sync_service.client import SendGridClient
from sync_service.email_logs import read_email_logs
from sync_service.log_events import MappedEvent, UnmappedEvent, webhook_event, webhook_events
from tests.email_logs_samples import add_samples, samples_in_email_logs
from tests.fake_sendgrid.logs_messages import logs_message
from tests.fake_sendgrid.respx_route import FakeAccount

JSON = dict[str, Any]
CREATED = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
# Spelled out, not read from shared/events.py: the table each webhook event type lands in.
TABLES = {
    "processed": "processed",
    "dropped": "dropped",
    "delivered": "delivered",
    "deferred": "deferred",
    "bounce": "bounce",
    "open": "_open",
    "click": "click",
    "spamreport": "spam_report",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "group_unsubscribe",
    "group_resubscribe": "group_resubscribe",
}


def as_the_webhook_sends_it(sample: JSON) -> JSON:
    """The sample as the webhook posts it. One documented difference is left: Email Logs gives
    the pool id as a numeric string (`OutboundIpPoolMetadata`), as real webhook posts do
    (event-webhook.md §2.4, "pool.id ... string "210" in practice"), where the reference's
    sample has the number."""
    if isinstance(sample.get("pool"), dict):
        return {**sample, "pool": {**sample["pool"], "id": str(sample["pool"]["id"])}}
    return sample


async def test_every_event_type_reads_back_as_the_webhook_sends_it(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    added = add_samples(account.email_logs, CREATED)

    windows = [w async for w in read_email_logs(account_client, CREATED, CREATED.replace(second=1))]

    details = {m.sg_message_id: m.detail for w in windows for m in w.messages}
    assert sorted(details) == sorted(sg_message_id for sg_message_id, _ in added)
    seen = set()
    for sg_message_id, sample in added:
        (mapped,) = webhook_events(details[sg_message_id])
        assert isinstance(mapped, MappedEvent), mapped
        expected = as_the_webhook_sends_it(sample)
        for key in sorted(expected.keys() | mapped.event.keys()):
            assert mapped.event.get(key, "<absent>") == expected.get(key, "<absent>"), (
                f"{sample['event']} {sample['sg_event_id']}: {key}"
            )
        assert mapped.table == TABLES[sample["event"]]
        model = EVENT_TYPES[sample["event"]][1]
        stored = model.model_validate(mapped.event)
        assert stored == model.model_validate(sample)
        assert custom_args(mapped.event) == custom_args(sample)
        assert mapped.shadowed_custom_args == {}
        if sample["event"] == "unsubscribe":
            assert mapped.logs_only == {"date": "2017-12-15"}  # Email Logs' own field
        else:
            assert mapped.logs_only == {}
        seen.add(sample["event"])
    assert seen == set(TABLES)


def one_event(event: JSON, **message: Any) -> MappedEvent | UnmappedEvent:
    detail = {
        "sg_message_id": "m1.recvd-1",
        "to_email": "to@example.com",
        "from_email": "from@example.com",
        "status": "delivered",
        "events": [event],
        **message,
    }
    return webhook_event(detail, event)


def mapped(event: JSON, **message: Any) -> MappedEvent:
    result = one_event(event, **message)
    assert isinstance(result, MappedEvent), result
    return result


def bounce(bounce_type: str) -> JSON:
    return {"event": "bounce", "sg_event_id": "b", "timestamp": 1, "type": bounce_type}


@pytest.mark.parametrize(
    ("logs_type", "webhook_type"),
    [("block", "blocked"), ("blocked", "blocked"), ("bounce", "bounce")],
)
def test_a_block_is_type_blocked_as_on_the_webhook(logs_type: str, webhook_type: str) -> None:
    event = mapped(bounce(logs_type)).event

    assert event["type"] == webhook_type
    assert event["tls"] == 0  # not sent by Email Logs unless 1; real bounces carry 0


@pytest.mark.parametrize(("logs_attempt", "webhook_attempt"), [("0", "1"), ("4", "5")])
def test_attempt_counts_the_attempts_made(logs_attempt: str, webhook_attempt: str) -> None:
    deferred = {"event": "deferred", "sg_event_id": "d", "timestamp": 1, "attempt": logs_attempt}

    event = mapped(deferred).event

    assert event["attempt"] == webhook_attempt
    assert DeferredEvent.model_validate(event).attempt == int(webhook_attempt)
    assert "tls" not in event  # the reference's deferrals carry none


def test_tls_and_machine_opens_are_sent_as_the_webhook_sends_them() -> None:
    with_tls = mapped({"event": "delivered", "sg_event_id": "a", "timestamp": 1, "tls": 1})
    without = mapped({"event": "delivered", "sg_event_id": "b", "timestamp": 1})
    machine = mapped({"event": "open", "sg_event_id": "c", "timestamp": 1, "sg_machine_open": True})
    human = mapped({"event": "open", "sg_event_id": "d", "timestamp": 1})

    assert (with_tls.event["tls"], without.event["tls"]) == (1, 0)
    assert (machine.event["sg_machine_open"], human.event["sg_machine_open"]) == (True, False)


def test_categories_are_a_string_for_one_and_an_array_for_several() -> None:
    def category(event_categories: list[str] | None, message_categories: list[str]) -> object:
        event: JSON = {"event": "processed", "sg_event_id": "p", "timestamp": 1}
        if event_categories is not None:
            event["category"] = event_categories
        return mapped(event, category=message_categories).event.get("category", "<absent>")

    assert category(["news"], ["news"]) == "news"
    assert category(["news", "weekly"], ["news", "weekly"]) == ["news", "weekly"]
    assert category(None, ["from the message"]) == "from the message"
    assert category([], []) == []
    assert category(None, []) == "<absent>"


def test_the_message_fields_the_webhook_carries_fill_in_each_event() -> None:
    message = {
        "asm_group_id": 42,
        "marketing_campaign_id": 7,
        "marketing_campaign_name": "spring",
        "marketing_campaign_split_id": 3,
        "marketing_campaign_version": "B",
        "template_id": "d-0123",
        "api_key_id": "key",
        "client_ip": "10.0.0.1",
        "outbound_ip": "149.72.1.1",
        "subject": "Hello",
        "teammate": "ann",
    }
    click = mapped({"event": "click", "sg_event_id": "c", "timestamp": 1, "email": ""}, **message)
    spam = mapped({"event": "spamreport", "sg_event_id": "s", "timestamp": 1}, **message)

    assert click.event == {
        "asm_group_id": 42,
        "email": "to@example.com",  # an empty `email` is the message's recipient
        "event": "click",
        "marketing_campaign_id": 7,
        "marketing_campaign_name": "spring",
        "marketing_campaign_split_id": 3,
        "marketing_campaign_version": "B",
        "sg_event_id": "c",
        "sg_message_id": "m1.recvd-1",
        "template_id": "d-0123",
        "timestamp": 1,
    }
    assert list(click.event) == sorted(click.event)  # as real posts order their keys
    assert "asm_group_id" not in spam.event  # the reference's spam reports carry none


def test_custom_args_are_flattened_and_a_clash_is_kept_visible() -> None:
    event = {
        "event": "delivered",
        "sg_event_id": "d",
        "timestamp": 1,
        "email": "to@example.com",
        "custom_args": {"order": "981", "email": "spoof@example.com", "ip": "1.2.3.4"},
    }

    result = mapped(event, custom_args={"tenant": "acme", "order": "from the message"})

    assert result.event["order"] == "981"  # the event's own copy
    assert result.event["tenant"] == "acme"
    assert result.event["email"] == "to@example.com"  # SendGrid's value wins, as on the webhook
    assert "ip" not in result.event  # a field SendGrid sends: a sender's value stays out of it
    assert result.shadowed_custom_args == {"email": "spoof@example.com", "ip": "1.2.3.4"}
    assert custom_args(result.event) == {"order": "981", "tenant": "acme"}
    assert "custom_args" not in result.event


def test_fields_only_email_logs_has_are_kept_aside_not_read_as_custom_args() -> None:
    drop = {
        "event": "dropped",
        "sg_event_id": "x",
        "timestamp": 1,
        "reason": "Invalid",
        "message": "the address has no domain",
    }

    result = mapped(drop)

    assert result.logs_only == {"message": "the address has no domain"}
    assert "message" not in result.event
    assert custom_args(result.event) == {}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("received", "Email Logs' 'received' event (SendGrid accepted the send request)"),
        ("cancel_drop", "it is not stored as 'dropped', which is a different event"),
        ("bounced", "a type the Event Webhook does not have: 'bounced'"),
        (None, "without an 'event' field"),
    ],
)
def test_types_the_webhook_does_not_have_come_back_for_rejected(
    kind: str | None, reason: str
) -> None:
    event: JSON = {"sg_event_id": "r", "timestamp": 1, "recv_msgid": "m1"}
    if kind is not None:
        event["event"] = kind

    result = one_event(event)

    assert isinstance(result, UnmappedEvent)
    assert result.kind == kind
    assert reason in result.reason
    assert result.payload == {**event, "sg_message_id": "m1.recvd-1", "email": "to@example.com"}


def test_every_event_of_a_message_in_order() -> None:
    detail = logs_message(
        "m2",
        [
            {"event": "processed", "sg_event_id": "1", "timestamp": 1, "email": "a@example.com"},
            {"event": "delivered", "sg_event_id": "2", "timestamp": 2, "email": "a@example.com"},
        ],
        raw_events=[{"event": "received", "sg_event_id": "0", "timestamp": 0}],
    )
    detail["events"].append("not an object")

    results = list(webhook_events(detail))

    assert [type(r).__name__ for r in results] == [
        "MappedEvent",
        "MappedEvent",
        "UnmappedEvent",
        "UnmappedEvent",
    ]
    assert [r.event["sg_event_id"] for r in results if isinstance(r, MappedEvent)] == ["1", "2"]
    assert samples_in_email_logs()  # the samples the first test reads are there
