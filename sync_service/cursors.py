"""Where each incremental collection of a source stands (`sync_cursors`): read before a
collection, written only once it was read and written to the end, so a failed read is
simply read again from the same place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.tables import sync_cursors


@dataclass(frozen=True)
class Cursor:
    # Everything up to this moment has been read (suppressions: `created`; statistics: the
    # last day read).
    position: datetime | None = None
    # When the collection was last read completely (suppressions: what finds removals).
    full_listing_at: datetime | None = None


async def load_cursor(engine: AsyncEngine, source_id: str, collection: str) -> Cursor:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(sync_cursors.c.position, sync_cursors.c.full_listing_at).where(
                    sync_cursors.c.source_id == source_id,
                    sync_cursors.c.collection == collection,
                )
            )
        ).first()
    return Cursor() if row is None else Cursor(row.position, row.full_listing_at)


async def save_cursor(engine: AsyncEngine, source_id: str, collection: str, cursor: Cursor) -> None:
    """Insert or update; one run of a source at a time (run_claims), so no two race here."""
    values = {"position": cursor.position, "full_listing_at": cursor.full_listing_at}
    key = (sync_cursors.c.source_id == source_id) & (sync_cursors.c.collection == collection)
    async with engine.begin() as connection:
        updated = await connection.execute(sync_cursors.update().where(key).values(values))
        if not updated.rowcount:
            await connection.execute(
                sync_cursors.insert().values(source_id=source_id, collection=collection, **values)
            )
