"""The latest rejected events of a source, newest first, with a preview of each payload.

The preview is the payload's first bytes decoded as UTF-8 (an invalid sequence shows as
U+FFFD): a rejected body can be anything a sender posted, so it is shown as text, never
interpreted, and cut short so one huge body cannot swell the answer.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.schemas import RejectedEvent, RejectedEvents
from shared.source_rows import Source
from shared.tables import source_tables

MAX_REJECTED = 200
PREVIEW_BYTES = 2048


async def latest_rejected(engine: AsyncEngine, source: Source, limit: int) -> RejectedEvents:
    rejected = source_tables(source.schema_name).rejected
    payload_bytes = sa.func.length(rejected.c.payload)
    # Only the preview's bytes leave the database (substr counts from 1 on both backends).
    preview = sa.func.substr(rejected.c.payload, 1, PREVIEW_BYTES)
    query = (
        sa.select(
            rejected.c.id,
            rejected.c.received_at,
            rejected.c.reason,
            rejected.c.event,
            preview.label("preview"),
            payload_bytes.label("payload_bytes"),
        )
        .order_by(rejected.c.received_at.desc(), rejected.c.id)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return RejectedEvents(
        source_id=source.id,
        events=[
            RejectedEvent(
                id=row.id,
                received_at=row.received_at,
                reason=row.reason,
                event=row.event,
                payload_preview=bytes(row.preview).decode("utf-8", errors="replace"),
                payload_bytes=int(row.payload_bytes),
                truncated=int(row.payload_bytes) > PREVIEW_BYTES,
            )
            for row in rows
        ],
    )
