"""Which bodies the receiver takes for SendGrid's test batch."""

from __future__ import annotations

import json

from shared.webhook_arrivals import TEST_MESSAGE_ID, is_test_batch
from tests.fake_sendgrid.webhooks import test_batch as sendgrid_test_batch
from tests.webhook_helpers import body_of, sample_events


def test_sendgrids_test_batch_is_recognised() -> None:
    body = json.dumps(sendgrid_test_batch(1_700_000_000), separators=(",", ":")).encode() + b"\r\n"
    assert is_test_batch(body)


def test_ordinary_traffic_is_not() -> None:
    # SendGrid's documented samples share the test batch's message id (and a longer one that
    # holds it): the others are what ordinary traffic looks like.
    test_id = TEST_MESSAGE_ID.decode()
    events = [e for e in sample_events() if test_id not in str(e.get("sg_message_id"))]
    assert len(events) == 9
    assert not is_test_batch(body_of(events))


def test_a_large_batch_is_not_searched() -> None:
    # Real traffic's batches are far larger than the test batch's few KB; they are not searched.
    padding = [{"event": "open", "email": f"user{i}@example.com"} for i in range(2_000)]
    body = body_of([*padding, {"event": "open", "sg_message_id": TEST_MESSAGE_ID.decode()}])
    assert len(body) > 64 * 1024
    assert not is_test_batch(body)
