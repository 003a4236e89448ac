"""Which Marketing Campaigns API holds an account's data: the new one or the legacy one.

Accounts without Legacy Marketing Campaigns get 403 (sometimes 401 "authorization required")
from `/v3/contactdb/*`. Accounts that have it usually also answer the new API, with nothing in
it, so the choice compares what each one holds rather than only what answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_service.client import SendGridClient
from sync_service.errors import AuthRejected, RequestRejected, SendGridForbidden, SendGridNotFound
from sync_service.records import LEGACY, MARKETING


@dataclass(frozen=True)
class ApiChoice:
    # MARKETING or LEGACY; None when the key reaches neither API: the marketing collections
    # are then `forbidden` (see collection_plan).
    api: str | None
    reason: str


async def _count(client: SendGridClient, path: str, key: str) -> int:
    body = await client.get_json(path)
    value = body.get(key) if isinstance(body, dict) else None
    return int(value) if isinstance(value, int | float) else 0


async def choose_api(client: SendGridClient) -> ApiChoice:
    """Probe both APIs' contact counts and pick the one that serves the marketing
    collections (shared.collections)."""
    marketing_refusal: SendGridForbidden | None = None
    marketing_contacts = 0
    try:
        # A 401 here means the key itself is bad: it propagates and fails the run.
        marketing_contacts = await _count(client, "/v3/marketing/contacts/count", "contact_count")
    except SendGridForbidden as exc:
        marketing_refusal = exc

    legacy_recipients: int | None
    try:
        legacy_recipients = await _count(
            client, "/v3/contactdb/recipients/count", "recipient_count"
        )
    except AuthRejected:
        if marketing_refusal is None:
            # The key works (the new API answered): this 401 is how some accounts without
            # Legacy Marketing Campaigns are answered.
            legacy_recipients = None
        else:
            raise
    except (SendGridForbidden, SendGridNotFound, RequestRejected):
        legacy_recipients = None

    if marketing_refusal is None:
        if legacy_recipients and not marketing_contacts:
            return ApiChoice(
                LEGACY,
                f"served by Legacy Marketing Campaigns: the account has {legacy_recipients} "
                "legacy recipients and no contacts in the new Marketing Campaigns",
            )
        return ApiChoice(MARKETING, "served by the new Marketing Campaigns API")
    if legacy_recipients is not None:
        return ApiChoice(
            LEGACY,
            "served by Legacy Marketing Campaigns: the key has no access to the new Marketing "
            f"Campaigns API ({marketing_refusal.detail or 'access forbidden'})",
        )
    return ApiChoice(
        None,
        f"{marketing_refusal}; the legacy API (/v3/contactdb) is not available either, so this "
        "account has no Marketing Campaigns data this key can read",
    )
