"""A source as the admin API and the CLI show it: never the API key, always the webhook URL."""

from __future__ import annotations

from shared.collections import selected
from shared.schemas import SourcePublic, WebhookSummary
from shared.settings import Settings
from shared.source_rows import Source
from shared.source_secrets import SourceSecrets
from shared.webhook_management import WebhookManagement


def source_public(
    source: Source,
    settings: Settings,
    secrets: SourceSecrets,
    *,
    warnings: list[str] | None = None,
    webhook: WebhookSummary | None = None,
) -> SourcePublic:
    return SourcePublic(
        id=source.id,
        name=source.name,
        schema_name=source.schema_name,
        region=source.region,
        webhook_url=settings.webhook_url(source.id, secrets.webhook_token(source)),
        webhook_signed=source.webhook_verification_key is not None,
        api_key_fingerprint=source.api_key_fingerprint,
        scopes=source.scopes,
        sync_interval_seconds=source.sync_interval(settings.SYNC_INTERVAL),
        collections=[collection.name for collection in selected(source.collections)],
        stats_timezone=source.stats_timezone,
        created_at=source.created_at,
        updated_at=source.updated_at,
        warnings=warnings or [],
        webhook=webhook,
        webhook_management=management(source),
    )


def management(source: Source) -> WebhookManagement:
    return WebhookManagement.model_validate(
        {
            "managed": source.webhook_managed is not None,
            "webhook_id": source.webhook_id,
            "origin": source.webhook_managed,
            "signed": source.webhook_verification_key is not None,
            "repair": source.webhook_repair,
            "test_status": source.webhook_test_status,
            "tested_at": source.webhook_tested_at,
            "checked_at": source.webhook_checked_at,
        }
    )
