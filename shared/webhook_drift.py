"""What can be wrong with a source's Event Webhook, and the comparison that finds it.

A finding is a name and a detail in words. The names are the ones stored in
`webhook_findings`, shown under `webhook.drift` and exported as the
`sendgrid_source_webhook_finding` gauge; the README's "Watching the webhook" says what to do
about each. This module only compares what SendGrid answered with what the source expects:
no I/O, so every rule is tested on its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import serialization

from shared.signature import InvalidVerificationKey, load_verification_key
from shared.webhook_settings import WebhookSettings

DISABLED: Final = "disabled"
URL_CHANGED: Final = "url_changed"
EVENTS_OFF: Final = "events_off"
SIGNING_OFF: Final = "signing_off"
KEY_ROTATED: Final = "key_rotated"
DELETED: Final = "deleted"  # a managed webhook's id is unknown to SendGrid
NOT_FOUND: Final = "not_found"  # no webhook of the account has the source's verification key
SILENT: Final = "silent"  # nothing delivered while SendGrid's stats show mail processed
SILENCE_UNCHECKED: Final = "silence_unchecked"  # the stats could not be read
CHECK_FAILED: Final = "check_failed"  # the webhook settings could not be read

# Every finding, in the order they are shown and exported.
FINDINGS: Final = (
    DELETED,
    NOT_FOUND,
    DISABLED,
    URL_CHANGED,
    EVENTS_OFF,
    SIGNING_OFF,
    KEY_ROTATED,
    SILENT,
    SILENCE_UNCHECKED,
    CHECK_FAILED,
)
# Findings about the webhook's settings (the rest are about its traffic or the check itself).
SETTINGS_FINDINGS: Final = frozenset(
    {DELETED, NOT_FOUND, DISABLED, URL_CHANGED, EVENTS_OFF, SIGNING_OFF, KEY_ROTATED}
)


@dataclass(frozen=True)
class Finding:
    finding: str
    detail: str


def key_der(text: str | None) -> bytes | None:
    """A public key as DER bytes, however it was written (base64 DER, wrapped, or PEM);
    None when it is missing or not a key."""
    if not text:
        return None
    try:
        key = load_verification_key(text)
    except InvalidVerificationKey:
        return None
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def same_key(a: str | None, b: str | None) -> bool:
    der = key_der(a)
    return der is not None and der == key_der(b)


def _short(key: str) -> str:
    der = key_der(key)
    text = base64.b64encode(der).decode() if der else key
    return f"…{text[-12:]}"


def drift(settings: WebhookSettings, url: str, verification_key: str | None) -> list[Finding]:
    """How `settings` differ from what the source expects: enabled, posting to `url`, every
    event type on, signed with the key the receiver verifies (`verification_key`)."""
    found: list[Finding] = []
    if not settings.enabled:
        found.append(Finding(DISABLED, "the webhook is turned off: SendGrid posts nothing"))
    if settings.url != url:
        found.append(
            Finding(URL_CHANGED, f"it posts to {settings.url or '(no url)'!r}, not to {url!r}")
        )
    off = settings.events_off()
    if off:
        found.append(Finding(EVENTS_OFF, ", ".join(off)))
    if not settings.public_key:
        found.append(
            Finding(SIGNING_OFF, "signing is off: the receiver refuses unsigned batches")
            if verification_key
            else Finding(SIGNING_OFF, "signing is off")
        )
    elif verification_key and not same_key(settings.public_key, verification_key):
        found.append(
            Finding(
                KEY_ROTATED,
                f"SendGrid signs with a new key ({_short(settings.public_key)}), not the "
                f"stored verification key ({_short(verification_key)}): signed batches fail",
            )
        )
    return found
