"""Deleting a source's Event Webhook from SendGrid when the source is removed.

Only the webhook the product created is deleted, or an adopted one when the caller says so:
a webhook taken over was someone's before. A webhook already gone is not an error. When the
deletion fails, the source is not removed, so the call can simply be repeated.
"""

from __future__ import annotations

from shared.errors import BadGateway, Unprocessable
from shared.source_rows import Source
from shared.webhook_settings import (
    WebhookApiError,
    WebhookKeyRejected,
    WebhookNotFound,
    WebhookScopeMissing,
    WebhookSettingsClient,
)

ADOPTED = "adopted"


async def remove_webhook(
    client: WebhookSettingsClient, source: Source, *, include_adopted: bool
) -> tuple[bool, str]:
    """Delete the source's managed webhook if allowed; (whether it is gone, what was done)."""
    webhook_id = source.webhook_id
    if source.webhook_managed is None or webhook_id is None:
        return False, "no webhook was configured by sendgrid-source, so none was deleted"
    if source.webhook_managed == ADOPTED and not include_adopted:
        return False, (
            f"webhook {webhook_id} was adopted, not created, by sendgrid-source, so it was left "
            "in SendGrid (add remove_adopted_webhook=true, or --remove-adopted-webhook, to "
            "delete it too)"
        )
    try:
        await client.delete(webhook_id)
    except WebhookNotFound:
        return True, f"webhook {webhook_id} was already gone from SendGrid"
    except (WebhookScopeMissing, WebhookKeyRejected) as exc:
        raise Unprocessable(_not_removed(webhook_id, exc)) from None
    except WebhookApiError as exc:
        raise BadGateway(_not_removed(webhook_id, exc)) from None
    return True, f"webhook {webhook_id} ({source.webhook_managed}) was deleted from SendGrid"


def _not_removed(webhook_id: str, exc: WebhookApiError) -> str:
    return (
        f"the source was not removed: its webhook {webhook_id} could not be deleted ({exc}). "
        "Retry, or remove the source without remove_webhook and delete the webhook in SendGrid"
    )
