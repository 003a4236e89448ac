"""The collections a sync can read: their names (what a source selects and the run ledger
records), the scopes an API key needs for each, and what the choice of Marketing Campaigns
API (new or legacy) decides.

One definition, read by the registry (selection and scope warnings, both services) and the
sync service (what to read). A collection is one object table of the source's schema, named
as the table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Collection:
    name: str
    # Scopes the key needs, each satisfied by itself or by one of its umbrellas.
    scopes: tuple[str, ...]
    # What a user loses without it, in words for warnings.
    holds: str
    # Read from the Marketing Campaigns API the account uses (new or legacy; verified senders
    # for `senders` on an account without either); the others are read the same way for
    # every account.
    marketing: bool = False


# Umbrella scopes SendGrid grants in place of the fine-grained ones (more-apis.md §2.1, §3.1).
_UMBRELLAS: dict[str, tuple[str, ...]] = {
    "suppression.bounces.read": ("suppression.read",),
    "suppression.blocks.read": ("suppression.read",),
    "suppression.spam_reports.read": ("suppression.read",),
    "suppression.invalid_emails.read": ("suppression.read",),
    "suppression.unsubscribes.read": ("suppression.read",),
    "stats.read": ("stats.global.read",),
}
# A key for Legacy Marketing Campaigns reads the marketing collections from the legacy API.
LEGACY_SCOPE = "marketing_campaigns.read"
MARKETING_SCOPE = "marketing.read"

COLLECTIONS: tuple[Collection, ...] = (
    Collection("lists", (MARKETING_SCOPE,), "contact lists", marketing=True),
    Collection("segments", (MARKETING_SCOPE,), "segments", marketing=True),
    Collection("recipients", (MARKETING_SCOPE,), "contacts", marketing=True),
    Collection("campaigns", (MARKETING_SCOPE,), "single sends (campaigns)", marketing=True),
    Collection("suppression_bounces", ("suppression.bounces.read",), "the bounce list"),
    Collection("suppression_blocks", ("suppression.blocks.read",), "the block list"),
    Collection(
        "suppression_spam_reports", ("suppression.spam_reports.read",), "the spam report list"
    ),
    Collection(
        "suppression_invalid_emails",
        ("suppression.invalid_emails.read",),
        "the invalid email list",
    ),
    Collection(
        "suppression_global_unsubscribes",
        ("suppression.unsubscribes.read",),
        "the global unsubscribe list",
    ),
    Collection("suppression_groups", ("asm.groups.read",), "unsubscribe groups"),
    Collection(
        "suppression_group_members",
        ("asm.groups.read", "asm.groups.suppressions.read"),
        "the members of each unsubscribe group",
    ),
    Collection("templates", ("templates.read",), "transactional templates"),
    Collection(
        "template_versions",
        ("templates.read", "templates.versions.read"),
        "the versions of each template",
    ),
    Collection("senders", (MARKETING_SCOPE,), "senders", marketing=True),
    Collection("stats_daily", ("stats.read",), "daily email statistics"),
    # Read from the new API whatever the account's choice: Legacy Marketing Campaigns has no
    # single sends or automations.
    Collection("singlesend_stats", (MARKETING_SCOPE,), "single send statistics"),
    Collection("automation_stats", (MARKETING_SCOPE,), "automation statistics"),
)

BY_NAME: dict[str, Collection] = {collection.name: collection for collection in COLLECTIONS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def has_scope(granted: set[str], scope: str) -> bool:
    return scope in granted or any(umbrella in granted for umbrella in _UMBRELLAS.get(scope, ()))


def missing_scopes(collection: Collection, granted: set[str]) -> list[str]:
    """The scopes `collection` needs that `granted` lacks. A marketing collection read from
    Legacy Marketing Campaigns needs the legacy scope instead."""
    if collection.marketing and LEGACY_SCOPE in granted:
        return []
    return [scope for scope in collection.scopes if not has_scope(granted, scope)]


def selected(names: list[str] | None) -> tuple[Collection, ...]:
    """The collections a source syncs, in catalogue order: all of them when it chose none."""
    if names is None:
        return COLLECTIONS
    chosen = set(names)
    return tuple(collection for collection in COLLECTIONS if collection.name in chosen)


def check_names(names: list[str]) -> list[str]:
    """`names` without repeats, in catalogue order; a ValueError naming the valid ones if any
    is unknown or none is given."""
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise ValueError(
            f"unknown collection(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(NAMES)}"
        )
    if not names:
        raise ValueError(f"choose at least one collection; valid names: {', '.join(NAMES)}")
    return [name for name in NAMES if name in set(names)]
