"""One SendGrid account's state: what it holds, the faults it is switched to, and what it was
asked. The app (app.py) answers from it on every request, so a test changes the account
between two syncs by changing this object.

Tests fill an empty account with explicit objects (`add_list`, `contacts = [...]`, ...); the
benchmark and the end-to-end tests take `generated_account(contacts=1_000_000, ...)`, whose
lists and single sends are ordinary objects (a few thousand dicts) and whose contacts are
generated (contacts.py).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from tests.fake_sendgrid.contacts import GENERATED_FIELDS, Contacts, GeneratedContacts
from tests.fake_sendgrid.payloads import (
    JSON,
    legacy_campaign,
    legacy_recipient,
    marketing_list,
    segment_v2,
    single_send,
)
from tests.fake_sendgrid.webhooks import WebhookAccount


@dataclass
class Export:
    """A started export job: its files (made in a thread from the start on) and its polls."""

    files: asyncio.Task[list[bytes]]
    contact_count: int
    polls: int = 0


@dataclass
class FakeAccountState:
    # --- what the account holds -----------------------------------------------------------
    lists: list[JSON] = field(default_factory=list)
    segments: list[JSON] = field(default_factory=list)
    contacts: Contacts = field(default_factory=list)
    custom_fields: list[JSON] = field(default_factory=list)
    single_sends: list[JSON] = field(default_factory=list)
    # Single send id -> the list ids its detail says it was sent to.
    send_lists: dict[str, list[str]] = field(default_factory=dict)
    # Legacy Marketing Campaigns data; None means the account does not have it (403).
    legacy: dict[str, list[JSON]] | None = None
    # Its Event Webhooks (webhooks.py).
    webhooks: WebhookAccount = field(default_factory=WebhookAccount)
    # Its global email statistics (stats.py): "YYYY-MM-DD" -> the day's non-zero metrics.
    daily_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    scopes: list[str] = field(
        default_factory=lambda: ["marketing.read", "scopes.read", "suppression.read"]
    )

    # --- the export job -------------------------------------------------------------------
    export_files: int = 1
    gzip_export: bool = True  # explicit contacts only; generated files are always gzip
    # Status polls answered "pending" before "ready" (SendGrid takes a while).
    polls_before_ready: int = 0
    # Status "failure" with this message instead of "ready".
    export_failure: str | None = None
    # Where the files are: None is this app's own host (a server); tests use a separate
    # host, like SendGrid's S3 links, to see that the API key is not sent there.
    downloads_url: str | None = None

    # --- faults ---------------------------------------------------------------------------
    key_revoked: bool = False  # every API call answers 401
    revoked_keys: set[str] = field(default_factory=set)  # calls with these keys answer 401
    unavailable: bool = False  # every API call answers 503
    forbidden: set[str] = field(default_factory=set)  # paths answered 403 (a missing scope)
    # Every Nth API request answers 429 until the next second; 0 turns this off.
    rate_limit_every: int = 0

    # --- what was asked -------------------------------------------------------------------
    requests: int = 0
    page_size_seen: list[str] = field(default_factory=list)  # of /v3/marketing/lists
    details_fetched: list[str] = field(default_factory=list)  # single send ids
    exports_started: int = 0
    exports: dict[str, Export] = field(default_factory=dict)
    stats_queries: list[dict[str, str]] = field(default_factory=list)  # of /v3/stats

    # --- building the account -------------------------------------------------------------

    def add_list(self, list_id: str, name: str, contact_count: int) -> None:
        self.lists.append(marketing_list(list_id, name, contact_count))

    def add_segment(self, segment_id: str, name: str, count: int, parents: list[str]) -> None:
        self.segments.append(segment_v2(segment_id, name, count, parents))

    def add_single_send(self, send_id: str, name: str, list_ids: list[str]) -> None:
        self.single_sends.append(single_send(send_id, name))
        self.send_lists[send_id] = list_ids

    def make_legacy(self) -> None:
        self.legacy = {
            "lists": [{"id": 1, "name": "the jones", "recipient_count": 2}],
            "segments": [
                {
                    "id": 1234,
                    "name": "Age segments < 25",
                    "list_id": 1,
                    "conditions": [{"field": "age", "value": "25", "operator": "lt"}],
                    "recipient_count": 1,
                }
            ],
            "recipients": [
                legacy_recipient("ZXhhbXBsZUBleGFtcGxlLmNvbQ==", "example@example.com"),
                legacy_recipient("am9uZXNAZXhhbXBsZS5jb20=", "jones@example.com"),
            ],
            "campaigns": [legacy_campaign(986724, "March Newsletter", "Sent")],
        }

    def single_send(self, send_id: str) -> JSON | None:
        return next((s for s in self.single_sends if s["id"] == send_id), None)


def generated_account(
    *,
    contacts: int = 1000,
    lists: int = 25,
    segments: int = 5,
    single_sends: int = 10,
    export_files: int = 2,
    rate_limit_every: int = 0,
    polls_before_ready: int = 1,
) -> FakeAccountState:
    """An account of any size, the same on every run: list n holds contacts // (n + 1), every
    segment and single send points at the first list."""
    list_0 = str(uuid.UUID(int=10_000))
    state = FakeAccountState(
        lists=[
            marketing_list(str(uuid.UUID(int=10_000 + n)), f"list {n}", contacts // (n + 1))
            for n in range(lists)
        ],
        segments=[
            segment_v2(str(uuid.UUID(int=20_000 + n)), f"segment {n}", n * 10, [list_0])
            for n in range(segments)
        ],
        contacts=GeneratedContacts(contacts),
        custom_fields=list(GENERATED_FIELDS),
        export_files=export_files,
        polls_before_ready=polls_before_ready,
        rate_limit_every=rate_limit_every,
    )
    for n in range(single_sends):
        state.add_single_send(str(uuid.UUID(int=30_000 + n)), f"single send {n}", [list_0])
    return state
