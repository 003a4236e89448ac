"""The management block of a source's Event Webhook, as the API shows it: whether the
product configured the webhook, which one, how (created or adopted), and its test's outcome.
Derived from the `sources` row alone, so every answer about a source can carry it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class WebhookManagement(BaseModel):
    managed: bool = Field(description="whether the product configured this source's webhook")
    webhook_id: str | None = Field(None, description="SendGrid's id of the webhook")
    origin: Literal["created", "adopted"] | None = Field(
        None, description="created by the product, or an existing webhook it took over"
    )
    signed: bool = Field(description="whether signatures are checked (a verification key)")
    repair: bool = Field(description="whether drift is repaired (PATCH webhook_repair)")
    test_status: Literal["arrived", "not_arrived", "failed"] | None = Field(
        None, description="whether SendGrid's test batch reached the receiver"
    )
    tested_at: datetime | None = None
    checked_at: datetime | None = Field(
        None, description="when the webhook was last checked (after each sync, or on demand)"
    )
