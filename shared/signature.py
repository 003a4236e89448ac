"""Verify SendGrid's Signed Event Webhook.

SendGrid signs ``timestamp header text + raw body bytes`` with ECDSA P-256 / SHA-256 and sends the
base64 DER signature in ``X-Twilio-Email-Event-Webhook-Signature``. The verification key is the
base64 DER SubjectPublicKeyInfo shown in the SendGrid UI.
"""

from __future__ import annotations

import base64
import time

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# Ten digits covers unix seconds until 2286; one spare digit is generous while still refusing
# millisecond timestamps and keeping int() away from huge attacker-supplied strings.
_MAX_TIMESTAMP_DIGITS = 11


class SignatureError(Exception):
    """A webhook request failed verification; the message says which check failed."""


class InvalidVerificationKey(ValueError):
    """The configured verification key is not a usable SendGrid (P-256) public key."""


def load_verification_key(text: str) -> ec.EllipticCurvePublicKey:
    """Parse the verification key as shown in the SendGrid UI (base64 DER SPKI, or PEM)."""
    stripped = text.strip()
    if not stripped:
        raise InvalidVerificationKey("verification key is empty")
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        else:
            # Pasted keys are sometimes wrapped across lines; the whitespace carries no data.
            der = base64.b64decode("".join(stripped.split()), validate=True)
            key = serialization.load_der_public_key(der)
    except ValueError as exc:  # binascii.Error and non-ASCII text are ValueErrors too
        raise InvalidVerificationKey(
            "verification key is not a base64 DER (or PEM) public key: copy the whole "
            "Verification Key from SendGrid's Signed Event Webhook settings"
        ) from exc
    except UnsupportedAlgorithm as exc:
        raise InvalidVerificationKey("verification key uses an unsupported algorithm") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidVerificationKey(
            f"verification key is not an elliptic-curve key (got {type(key).__name__})"
        )
    if not isinstance(key.curve, ec.SECP256R1):
        raise InvalidVerificationKey(
            f"verification key is on curve {key.curve.name}, but SendGrid signs with P-256"
        )
    return key


def verify_signature(
    key: ec.EllipticCurvePublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance_seconds: float | None = None,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless ``signature`` signs ``timestamp`` + ``body`` under ``key``.

    ``body`` must be the raw request bytes: re-serialized JSON does not verify. With
    ``tolerance_seconds`` set, timestamps further than that from ``now`` are refused too.
    """
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    # str.isdigit() alone accepts non-ASCII digits such as "²", which int() then rejects.
    if not (
        timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS
    ):
        raise SignatureError("timestamp header is not a unix time in seconds")
    try:
        # validate=True refuses junk after the padding, which a lenient decoder silently drops.
        der = base64.b64decode(signature, validate=True)
    except ValueError as exc:
        raise SignatureError("signature header is not valid base64") from exc
    try:
        decode_dss_signature(der)
    except ValueError as exc:
        raise SignatureError("signature header is not a DER-encoded ECDSA signature") from exc
    try:
        key.verify(der, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureError(
            "signature does not match the body and timestamp "
            "(wrong verification key, or the body was altered)"
        ) from exc
    # Checked after the signature so a freshness refusal always means a genuine but stale
    # delivery (a replay or a late retry), never a forgery.
    if tolerance_seconds is not None:
        age = (time.time() if now is None else now) - int(timestamp)
        if age > tolerance_seconds:
            raise SignatureError(
                f"timestamp is {age:.0f} s old, beyond the configured tolerance of "
                f"{tolerance_seconds:g} s"
            )
        if -age > tolerance_seconds:
            raise SignatureError(
                f"timestamp is {-age:.0f} s in the future, beyond the configured tolerance of "
                f"{tolerance_seconds:g} s"
            )
