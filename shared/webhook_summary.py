"""What a source's webhook has received, read from its event tables (wherever they live,
`shared.event_counts`) and `webhook_stats`."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.event_counts import EventCounts
from shared.schemas import WebhookSummary
from shared.source_rows import Source
from shared.tables import webhook_stats
from shared.webhook_findings import list_findings


async def webhook_summary(
    engine: AsyncEngine, counts: EventCounts, source: Source
) -> WebhookSummary:
    """Events the webhook stored per table over the last 24 hours (backfilled ones left out),
    the counters kept by the writer, and what the last webhook check found (`drift`)."""
    last_24h = await counts.received_since(source.schema_name, utcnow() - timedelta(hours=24))
    async with engine.connect() as connection:
        stats = (
            await connection.execute(
                sa.select(webhook_stats).where(webhook_stats.c.source_id == source.id)
            )
        ).first()
    return WebhookSummary(
        last_event_at=stats.last_event_at if stats else None,
        events_last_24h=last_24h,
        events_stored=stats.events_stored if stats else 0,
        duplicates_absorbed=stats.duplicates if stats else 0,
        rejected=stats.rejected if stats else 0,
        drift=await list_findings(engine, source.id),
    )
