"""One SendGrid account's state: what it holds, the faults it is switched to, and what it was
asked. The app (app.py) answers from it on every request, so a test changes the account
between two syncs by changing this object.

Tests fill an empty account with explicit objects (`add_list`, `add_suppression`,
`add_template`, `contacts = [...]`, ...); the benchmark and the end-to-end tests take
`generated_account(contacts=1_000_000, ...)`, whose lists, single sends, suppressions,
groups, templates, senders and stats are ordinary objects (a few thousand dicts) and whose
contacts are generated (contacts.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fake_sendgrid.contacts import GENERATED_FIELDS, Contacts, GeneratedContacts
from tests.fake_sendgrid.marketing_stats import automation_stat, singlesend_stat
from tests.fake_sendgrid.payloads import (
    GLOBAL_STATS_METRICS,
    JSON,
    legacy_campaign,
    legacy_recipient,
    marketing_list,
    segment_v2,
    single_send,
)
from tests.fake_sendgrid.senders import marketing_sender, verified_sender
from tests.fake_sendgrid.suppressions import SUPPRESSION_KINDS, suppression, suppression_group
from tests.fake_sendgrid.templates import template_version, transactional_template
from tests.fake_sendgrid.webhooks import WebhookAccount


@dataclass
class Export:
    """A started export job: its files (made in a thread from the start on) and its polls."""

    files: asyncio.Task[list[bytes]]
    contact_count: int
    started: float = field(default_factory=time.monotonic)
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
    # Its suppression lists (suppressions.py), by the name in their path: every kind present.
    suppressions: dict[str, list[JSON]] = field(
        default_factory=lambda: {kind: [] for kind in SUPPRESSION_KINDS}
    )
    # Its unsubscribe groups and, by group id, the addresses each suppresses.
    suppression_groups: list[JSON] = field(default_factory=list)
    group_members: dict[int, list[str]] = field(default_factory=dict)
    # Its transactional templates, each embedding its versions (templates.py).
    templates: list[JSON] = field(default_factory=list)
    # Its Marketing Campaigns senders and its Sender Identities (senders.py).
    marketing_senders: list[JSON] = field(default_factory=list)
    verified_senders: list[JSON] = field(default_factory=list)
    # Its Marketing Campaigns statistics rows (marketing_stats.py).
    singlesend_stats: list[JSON] = field(default_factory=list)
    automation_stats: list[JSON] = field(default_factory=list)
    scopes: list[str] = field(
        default_factory=lambda: ["marketing.read", "scopes.read", "suppression.read"]
    )

    # --- the export job -------------------------------------------------------------------
    export_files: int = 1
    gzip_export: bool = True  # explicit contacts only; generated files are always gzip
    # Status polls answered "pending" before "ready" (SendGrid takes a while).
    polls_before_ready: int = 0
    # And pending for at least this many seconds after it was started: the benchmark's stand-in
    # for the time SendGrid takes to build a large export.
    export_seconds: float = 0.0
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
    # (path, query parameters) of every API request, in arrival order, whatever it was
    # answered (a 403, a 429 or a page); `queries_to(path)` picks one path's.
    queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)

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

    def add_suppression(self, kind: str, email: str, created: int, **fields: object) -> JSON:
        """Put `email` on list `kind` (a key of `suppressions`), added at `created` (unix
        seconds); the list's other fields are the spec example's unless given. An address is
        on a list once: adding it again replaces its row."""
        row = suppression(kind, email, created, **fields)
        self.remove_suppression(kind, email)
        self.suppressions[kind].append(row)
        return row

    def remove_suppression(self, kind: str, email: str) -> None:
        """Take `email` off list `kind`, as a DELETE, the UI or a block's expiry does: SendGrid
        says nothing of it to a reader."""
        self.suppressions[kind] = [r for r in self.suppressions[kind] if r["email"] != email]

    def add_group(
        self,
        group_id: int,
        name: str,
        members: list[str],
        *,
        description: str = "An Unsubscribe Group",
        is_default: bool = False,
    ) -> JSON:
        """An unsubscribe group suppressing `members`; its `unsubscribes` count is answered
        from `group_members`, so changing the members changes it."""
        group = suppression_group(group_id, name, description, is_default, len(members))
        self.suppression_groups = [g for g in self.suppression_groups if g["id"] != group_id]
        self.suppression_groups.append(group)
        self.group_members[group_id] = list(members)
        return group

    def remove_group(self, group_id: int) -> None:
        """Delete a group; as on SendGrid, its members are no longer suppressed by it."""
        self.suppression_groups = [g for g in self.suppression_groups if g["id"] != group_id]
        self.group_members.pop(group_id, None)

    def add_template(
        self,
        template_id: str,
        name: str,
        generation: str,
        versions: list[JSON] | None = None,
        *,
        updated_at: str = "2021-04-28 13:12:46",
    ) -> JSON:
        """A transactional template ("legacy" or "dynamic") with `versions` (made with
        `templates.template_version`); a template of the same id is replaced."""
        template = transactional_template(
            template_id, name, generation, list(versions or []), updated_at
        )
        self.templates = [t for t in self.templates if t["id"] != template_id]
        self.templates.append(template)
        return template

    def add_marketing_sender(
        self, sender_id: int, nickname: str, from_email: str, **fields: Any
    ) -> JSON:
        """A Marketing Campaigns sender (`senders.marketing_sender` says the defaults)."""
        sender = marketing_sender(sender_id, nickname, from_email, **fields)
        self.marketing_senders.append(sender)
        return sender

    def add_verified_sender(
        self, sender_id: int, nickname: str, from_email: str, **fields: Any
    ) -> JSON:
        """A Sender Identity (`senders.verified_sender` says the defaults)."""
        sender = verified_sender(sender_id, nickname, from_email, **fields)
        self.verified_senders.append(sender)
        return sender

    def add_singlesend_stat(
        self,
        send_id: str,
        *,
        ab_variation: str = "all",
        ab_phase: str = "all",
        aggregation: str = "total",
        **metrics: int,
    ) -> JSON:
        """One single send's stats row for one A/B variation and phase ("all" unless given)."""
        row = singlesend_stat(
            send_id,
            ab_variation=ab_variation,
            ab_phase=ab_phase,
            aggregation=aggregation,
            **metrics,
        )
        self.singlesend_stats.append(row)
        return row

    def add_automation_stat(
        self,
        automation_id: str,
        *,
        step_id: str = "all",
        aggregation: str = "total",
        **metrics: int,
    ) -> JSON:
        """One automation's stats row for one step ("all" unless given)."""
        row = automation_stat(automation_id, step_id=step_id, aggregation=aggregation, **metrics)
        self.automation_stats.append(row)
        return row

    def queries_to(self, path: str) -> list[dict[str, str]]:
        """The query parameters of every request to `path`, in order."""
        return [query for asked, query in self.queries if asked == path]


def generated_account(
    *,
    contacts: int = 1000,
    lists: int = 25,
    segments: int = 5,
    single_sends: int = 10,
    export_files: int = 2,
    rate_limit_every: int = 0,
    polls_before_ready: int = 1,
    suppressions: int = 2500,
    groups: int = 12,
    templates: int = 30,
    senders: int = 3,
    automations: int = 5,
    stats_days: int = 30,
) -> FakeAccountState:
    """An account of any size, the same on every run: list n holds contacts // (n + 1), every
    segment and single send points at the first list; the other collections are
    `generate_collections`'."""
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
    state.scopes.extend(GENERATED_EXTRA_SCOPES)
    generate_collections(
        state,
        suppressions=suppressions,
        groups=groups,
        templates=templates,
        senders=senders,
        automations=automations,
        stats_days=stats_days,
    )
    return state


# The read scopes of the other collections, granted beside the default ones as a full-access key
# has them (the group-member one is named only in the examples of SendGrid's SSO OpenAPI file).
GENERATED_EXTRA_SCOPES = (
    "asm.groups.read",
    "asm.groups.suppressions.read",
    "stats.read",
    "templates.read",
    "templates.versions.read",
)

# Where generated suppressions start: 2025-11-01T00:00:00Z, one every ten minutes after.
GENERATED_SUPPRESSIONS_FROM = 1_761_955_200


def generate_collections(
    state: FakeAccountState,
    *,
    suppressions: int,
    groups: int,
    templates: int,
    senders: int,
    automations: int,
    stats_days: int,
) -> None:
    """Fill every collection beside lists, segments, contacts and single sends, the same on
    every run (the daily stats are the same for the same day):

    - `suppressions` rows dealt round the five lists, row n being user{n}@example.com added
      at GENERATED_SUPPRESSIONS_FROM + 600 n;
    - `groups` unsubscribe groups, group g (id 100 + g) suppressing 10 + 5 g addresses;
    - `templates` templates, every third one legacy and the others dynamic, template n with
      n % 3 + 1 versions of which the last is active;
    - `senders` Marketing Campaigns senders and as many Sender Identities;
    - a stats row per single send and per automation, as the list endpoints answer them
      (totals: variation, phase and step "all");
    - `stats_days` days of global stats up to today, each day's numbers made of its date.
    """
    for n in range(suppressions):
        kind = SUPPRESSION_KINDS[n % len(SUPPRESSION_KINDS)]
        created = GENERATED_SUPPRESSIONS_FROM + 600 * n
        state.suppressions[kind].append(suppression(kind, f"user{n}@example.com", created))
    for g in range(groups):
        members = [f"user{g * 1000 + m}@example.com" for m in range(10 + 5 * g)]
        state.add_group(100 + g, f"group {g}", members, is_default=g == 0)
    for n in range(templates):
        template_id = str(uuid.UUID(int=40_000 + n))
        count = n % 3 + 1
        versions = [
            template_version(
                str(uuid.UUID(int=50_000 + 10 * n + v)),
                f"template {n} version {v}",
                active=int(v == count - 1),
                subject=f"Template {n}, version {v}",
                updated_at=f"2026-0{1 + v}-{1 + n % 28:02d} 10:00:00",
            )
            for v in range(count)
        ]
        generation = "legacy" if n % 3 == 0 else "dynamic"
        updated_at = f"2026-0{count}-{1 + n % 28:02d} 10:00:00"
        state.add_template(
            template_id, f"template {n}", generation, versions, updated_at=updated_at
        )
    for n in range(senders):
        state.add_marketing_sender(1 + n, f"Sender {n}", f"sender{n}@example.com")
        state.add_verified_sender(1001 + n, f"Identity {n}", f"identity{n}@example.com")
    for n, send in enumerate(state.single_sends):
        state.add_singlesend_stat(send["id"], requests=100 + n, delivered=95 + n, opens=40 + n)
    for a in range(automations):
        automation_id = str(uuid.UUID(int=60_000 + a))
        state.add_automation_stat(automation_id, requests=50 + a, delivered=48 + a, clicks=a)
    today = datetime.now(UTC).date()
    for back in range(stats_days):
        day = today - timedelta(days=back)
        seed = day.toordinal()
        state.daily_stats[day.isoformat()] = {
            name: (seed * (i + 7)) % 97 for i, name in enumerate(GLOBAL_STATS_METRICS)
        }
