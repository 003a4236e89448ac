"""What a source's webhook has received, read from its event tables and `webhook_stats`."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import utcnow
from shared.schemas import WebhookSummary
from shared.source_rows import Source
from shared.tables import source_tables, webhook_stats
from shared.webhook_findings import list_findings


async def webhook_summary(engine: AsyncEngine, source: Source) -> WebhookSummary:
    """Events stored per table over the last 24 hours, the counters kept by the writer, and
    what the last webhook check found (`drift`)."""
    tables = source_tables(source.schema_name)
    since = utcnow() - timedelta(hours=24)
    async with engine.connect() as connection:
        counts = {
            name: int(
                await connection.scalar(
                    sa.select(sa.func.count()).where(
                        table.c.received_at >= since, table.c.origin == "webhook"
                    )
                )
                or 0
            )
            for name, table in tables.events.items()
        }
        stats = (
            await connection.execute(
                sa.select(webhook_stats).where(webhook_stats.c.source_id == source.id)
            )
        ).first()
    return WebhookSummary(
        last_event_at=stats.last_event_at if stats else None,
        events_last_24h=counts,
        events_stored=stats.events_stored if stats else 0,
        duplicates_absorbed=stats.duplicates if stats else 0,
        rejected=stats.rejected if stats else 0,
        drift=await list_findings(engine, source.id),
    )
