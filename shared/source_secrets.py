"""A source's secrets at rest: its SendGrid API key and its webhook token, encrypted with
SECRET_KEY. Reading a key needs only SECRET_KEY, never SendGrid."""

from __future__ import annotations

from shared.crypto import SecretBox, fingerprint, new_webhook_token
from shared.source_rows import Source


class SourceSecrets:
    def __init__(self, secret_key: str) -> None:
        self.box = SecretBox(secret_key)

    def api_key(self, source: Source) -> str:
        return self.box.decrypt(source.api_key_encrypted)

    def webhook_token(self, source: Source) -> str:
        return self.box.decrypt(source.webhook_token_encrypted)

    def api_key_columns(self, api_key: str) -> dict[str, str]:
        """The `sources` columns that hold an API key: encrypted, and its fingerprint."""
        return {
            "api_key_encrypted": self.box.encrypt(api_key),
            "api_key_fingerprint": fingerprint(api_key),
        }

    def new_webhook_token_encrypted(self) -> str:
        return self.box.encrypt(new_webhook_token())
