"""Which Event Webhook features a source's API key allows, from its `/v3/scopes` list.

Read before anything is attempted, so the answer says up front what will be skipped and which
scope would allow it. A full-access key lists every scope, so presence is the whole test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.webhook_settings import (
    CREATE_SCOPE,
    DELETE_SCOPE,
    READ_SCOPE,
    TEST_SCOPE,
    UPDATE_SCOPE,
)

# What each scope lets the product do with the source's webhook.
FEATURES: Final = {
    READ_SCOPE: "read the account's webhooks (find one to adopt, read its signing key)",
    UPDATE_SCOPE: "turn signing on and point an adopted webhook at this source",
    CREATE_SCOPE: "create a webhook",
    DELETE_SCOPE: "delete the webhook it created when the source is removed",
    TEST_SCOPE: "ask SendGrid for a test batch",
}
_WHERE = "SendGrid: Settings > API Keys > edit the key > Mail Settings > Event Webhook"


@dataclass(frozen=True)
class WebhookPermissions:
    granted: frozenset[str]

    @classmethod
    def of(cls, scopes: list[str]) -> WebhookPermissions:
        return cls(frozenset(scopes) & frozenset(FEATURES))

    @property
    def can_configure(self) -> bool:
        return READ_SCOPE in self.granted and UPDATE_SCOPE in self.granted

    def allows(self, scope: str) -> bool:
        return scope in self.granted

    def missing(self) -> list[str]:
        return [scope for scope in FEATURES if scope not in self.granted]

    def warnings(self) -> list[str]:
        """One line per missing scope: what cannot be done, and the scope that would allow it."""
        return [
            f"the API key lacks the {scope} scope, so the product cannot {FEATURES[scope]} "
            f"({_WHERE})"
            for scope in self.missing()
        ]

    def registration_note(self, source_id: str) -> str | None:
        """At a registration that does not configure the webhook: one line saying which of
        the webhook features the key allows, so the user learns it before asking for them."""
        missing = self.missing()
        if not missing:
            return None
        allowed = [FEATURES[scope] for scope in FEATURES if scope in self.granted]
        can = f"it allows the product to {'; '.join(allowed)}" if allowed else "it allows none"
        return (
            f"Event Webhook features: the API key lacks {', '.join(missing)} ({can}). To let "
            f"the product configure and watch the webhook, give the key those scopes ({_WHERE}) "
            f"and call POST /sources/{source_id}/webhook; otherwise set the webhook up by hand "
            "as the README's 'Point SendGrid at the webhook' describes"
        )

    def refusal(self, source_id: str) -> str:
        """Why configuring is not attempted at all (read or update missing)."""
        needed = [s for s in (READ_SCOPE, UPDATE_SCOPE) if s not in self.granted]
        return (
            f"the Event Webhook was not configured: the API key lacks {' and '.join(needed)}. "
            f"Give the key those scopes ({_WHERE}) and call POST /sources/{source_id}/webhook "
            "(or `sendgrid-source sources webhook`), or set the webhook up by hand as the "
            "README's 'Point SendGrid at the webhook' describes"
        )
