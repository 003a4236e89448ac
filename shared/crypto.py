"""Encryption at rest for SendGrid API keys and webhook tokens (Fernet: AES-128-CBC + HMAC)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    """Encrypts and decrypts small secrets with a key derived from SECRET_KEY.

    The derivation lets SECRET_KEY be any high-entropy text rather than a Fernet key.
    """

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"sendgrid-source/secrets"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be decrypted: SECRET_KEY differs from the one it was "
                "encrypted with"
            ) from None


def new_webhook_token() -> str:
    """256 random bits, URL-safe: the unguessable part of a source's webhook URL."""
    return secrets.token_urlsafe(32)


def fingerprint(secret: str) -> str:
    """A short, non-reversible label for a secret (safe for logs and API answers)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
