"""Realistic Event Webhook traffic: every event type in the proportions a sending account
sees, with categories, custom args, and a share of duplicates (SendGrid's retries)."""

from __future__ import annotations

import base64
import json
import random
import uuid
from typing import Any

# Share of each event type in a typical sending account's stream.
MIX: list[tuple[str, float]] = [
    ("processed", 0.26), ("delivered", 0.25), ("open", 0.22), ("click", 0.10),
    ("deferred", 0.05), ("bounce", 0.03), ("dropped", 0.03), ("unsubscribe", 0.02),
    ("group_unsubscribe", 0.015), ("group_resubscribe", 0.005), ("spamreport", 0.01),
    ("account_status_change", 0.001),
]  # fmt: skip

USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15"


def make_event(rng: random.Random, n: int) -> dict[str, Any]:
    kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
    message = f"{uuid.UUID(int=rng.getrandbits(128)).hex[:22]}.recvd-{n % 97}"
    event: dict[str, Any] = {
        "email": f"user{rng.randrange(1_000_000)}@example.com",
        "event": kind,
        "timestamp": 1_760_000_000 + n,
        "sg_event_id": base64.urlsafe_b64encode(rng.randbytes(24)).decode(),
        "sg_message_id": message,
        "smtp-id": f"<{message[:22]}@ismtpd-{n % 50}>",
        "category": rng.choice([["newsletter"], ["newsletter", "weekly"], "receipt", []]),
        "userid": str(rng.randrange(100_000)),
        "campaign": rng.choice(["spring", "autumn", "welcome"]),
    }
    if kind == "delivered":
        event |= {"response": "250 OK", "ip": "167.89.0.1", "tls": 1}
    elif kind == "deferred":
        event |= {"response": "400 try again later", "attempt": str(rng.randrange(1, 9))}
    elif kind == "bounce":
        event |= {
            "type": rng.choice(["bounce", "blocked"]),
            "status": "5.0.0",
            "reason": "550 unknown user",
            "bounce_classification": "Invalid Address",
        }
    elif kind == "dropped":
        event |= {"reason": "Bounced Address", "status": "5.0.0"}
    elif kind in ("open", "click", "group_unsubscribe", "group_resubscribe"):
        event |= {"ip": "203.0.113.7", "useragent": USER_AGENT}
        if kind == "open":
            event["sg_machine_open"] = rng.random() < 0.4
        else:
            event |= {"url": f"https://example.com/p/{rng.randrange(500)}",
                      "url_offset": {"index": rng.randrange(5), "type": "html"}}  # fmt: skip
    elif kind == "processed":
        event["pool"] = {"name": "main", "id": 210}
    elif kind == "account_status_change":
        event = {"event": kind, "timestamp": event["timestamp"],
                 "sg_event_id": event["sg_event_id"], "type": "compliance_suspend"}  # fmt: skip
    return event


def make_batches(
    count: int, size: int, duplicate_share: float = 0.10, seed: int = 7
) -> tuple[list[list[dict[str, Any]]], int]:
    """`count` batches of `size` events; returns them and the number of unique events."""
    rng = random.Random(seed)
    sent: list[dict[str, Any]] = []
    batches = []
    n = 0
    for _ in range(count):
        batch = []
        for _ in range(size):
            if sent and rng.random() < duplicate_share:
                batch.append(rng.choice(sent))
            else:
                event = make_event(rng, n)
                n += 1
                sent.append(event)
                batch.append(event)
        batches.append(batch)
    return batches, n


def frame(batch: list[dict[str, Any]]) -> bytes:
    return b"[" + b",\r\n".join(json.dumps(e).encode() for e in batch) + b"]\r\n"
