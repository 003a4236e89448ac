"""Reading the `sources` table: a source as stored, and finding one by id or name.

Nothing here decrypts, talks to SendGrid or touches a source's schema, so every service can
read its sources with the engine alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.errors import Conflict, NotFound
from shared.tables import sources


@dataclass(frozen=True)
class Source:
    """A registered source as stored, secrets still encrypted."""

    id: str
    name: str
    schema_name: str
    region: str
    api_key_encrypted: str
    api_key_fingerprint: str
    scopes: list[str]
    webhook_token_encrypted: str
    webhook_verification_key: str | None
    webhook_id: str | None
    webhook_managed: str | None
    webhook_repair: bool
    webhook_test_status: str | None
    webhook_tested_at: datetime | None
    webhook_checked_at: datetime | None
    sync_interval_seconds: int | None
    # The collections it syncs (shared.collections); None: all of them.
    collections: list[str] | None
    # The IANA time zone of the account's statistics, and the last reconciliation against
    # them: when, and why it could not run (None when it did).
    stats_timezone: str
    completeness_checked_at: datetime | None
    completeness_error: str | None
    schema_version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Source:
        return cls(**row._mapping)

    def sync_interval(self, default: timedelta) -> int:
        """Seconds between syncs: the source's own interval, or the default (SYNC_INTERVAL)."""
        return self.sync_interval_seconds or int(default.total_seconds())


class SourceRows:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list_sources(self, *, include_removed: bool = False) -> list[Source]:
        query = sa.select(sources).order_by(sources.c.created_at)
        if not include_removed:
            query = query.where(sources.c.deleted_at.is_(None))
        async with self.engine.connect() as connection:
            return [Source.from_row(row) for row in await connection.execute(query)]

    async def get(self, source_id: str, *, include_removed: bool = False) -> Source:
        query = sa.select(sources).where(sources.c.id == source_id)
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None or (row.deleted_at is not None and not include_removed):
            raise NotFound(f"no source with id {source_id!r}")
        return Source.from_row(row)

    async def find(self, id_or_name: str, *, include_removed: bool = False) -> Source:
        """The source with this id, else the one with exactly this name.

        The id wins, so a source can always be reached even if another is named like its id.
        """
        every = await self.list_sources(include_removed=True)
        matches = [s for s in every if s.id == id_or_name] or [
            s for s in every if s.name == id_or_name
        ]
        if len(matches) > 1:
            raise Conflict(f"{len(matches)} sources are named {id_or_name!r}: give the id instead")
        if not matches:
            which = "source" if include_removed else "active source"
            raise NotFound(f"no {which} with id or name {id_or_name!r}")
        source = matches[0]
        if source.deleted_at is not None and not include_removed:
            raise NotFound(
                f"source {source.name!r} is removed; its data is still in schema "
                f"{source.schema_name!r}"
            )
        return source
