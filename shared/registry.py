"""The source registry: one source per SendGrid account, each with its own warehouse schema.

Used by the ingest service's REST API and by the `sendgrid-source sources` commands; the sync
service reads it to know what to sync.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import warehouse
from shared.crypto import SecretBox, fingerprint, new_webhook_token
from shared.db import (
    SQLITE_MAX_ATTACHED,
    forget_source_schema,
    is_sqlite,
    sqlite_schema_path,
    use_source_schema,
)
from shared.errors import Conflict, NotFound, Unprocessable
from shared.identifiers import InvalidIdentifier, schema_name_for
from shared.schemas import SourceCreate, SourcePublic, SourceUpdate, WebhookSummary
from shared.sendgrid_scopes import fetch_scopes, missing_scope_warnings
from shared.settings import Settings
from shared.tables import SOURCE_SCHEMA_VERSION, source_tables, sources, webhook_stats


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
    sync_interval_seconds: int | None
    schema_version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Source:
        return cls(**row._mapping)


def utcnow() -> datetime:
    return datetime.now(UTC)


class SourceRegistry:
    def __init__(self, engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient) -> None:
        self.engine = engine
        self.settings = settings
        self.http = http
        self.box = SecretBox(settings.secret_key)

    # --- reading -------------------------------------------------------------------------

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

    def api_key(self, source: Source) -> str:
        return self.box.decrypt(source.api_key_encrypted)

    def webhook_token(self, source: Source) -> str:
        return self.box.decrypt(source.webhook_token_encrypted)

    def public(
        self,
        source: Source,
        *,
        warnings: list[str] | None = None,
        webhook: WebhookSummary | None = None,
    ) -> SourcePublic:
        return SourcePublic(
            id=source.id,
            name=source.name,
            schema_name=source.schema_name,
            region=source.region,
            webhook_url=self.settings.webhook_url(source.id, self.webhook_token(source)),
            webhook_signed=source.webhook_verification_key is not None,
            api_key_fingerprint=source.api_key_fingerprint,
            scopes=source.scopes,
            sync_interval_seconds=self.sync_interval(source),
            created_at=source.created_at,
            updated_at=source.updated_at,
            warnings=warnings or [],
            webhook=webhook,
        )

    def sync_interval(self, source: Source) -> int:
        default = int(self.settings.SYNC_INTERVAL.total_seconds())
        return source.sync_interval_seconds or default

    async def webhook_summary(self, source: Source) -> WebhookSummary:
        tables = source_tables(source.schema_name)
        since = utcnow() - timedelta(hours=24)
        use_source_schema(self.engine, source.schema_name)
        async with self.engine.connect() as connection:
            counts = {
                name: int(
                    await connection.scalar(
                        sa.select(sa.func.count()).where(table.c.received_at >= since)
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
        )

    # --- writing -------------------------------------------------------------------------

    async def create(self, request: SourceCreate) -> tuple[Source, list[str]]:
        """Validate the name and the key, then create the row, the schema and its tables."""
        schema = self._schema_for(request.name)
        base_url = self.settings.sendgrid_base_url(request.region)
        scopes = await fetch_scopes(self.http, base_url, request.api_key)
        now = utcnow()
        source_id = str(uuid.uuid4())
        name = request.name.strip()
        values: dict[str, Any] = {
            "id": source_id,
            "name": name,
            "schema_name": schema,
            "region": request.region,
            "api_key_encrypted": self.box.encrypt(request.api_key),
            "api_key_fingerprint": fingerprint(request.api_key),
            "scopes": scopes,
            "webhook_token_encrypted": self.box.encrypt(new_webhook_token()),
            "webhook_verification_key": request.webhook_verification_key,
            "sync_interval_seconds": (
                int(request.sync_interval.total_seconds()) if request.sync_interval else None
            ),
            "schema_version": SOURCE_SCHEMA_VERSION,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        use_source_schema(self.engine, schema)
        try:
            async with self.engine.begin() as connection:
                await self._check_free(connection, name, schema)
                await connection.execute(sources.insert().values(values))
                await connection.execute(webhook_stats.insert().values(source_id=source_id))
                await warehouse.create_source_schema(connection, schema)
        except IntegrityError:
            raise Conflict(
                f"a source named {request.name!r} (schema {schema!r}) was registered at the "
                "same moment; choose another name"
            ) from None
        return await self.get(source_id), missing_scope_warnings(scopes)

    async def update(self, source_id: str, request: SourceUpdate) -> tuple[Source, list[str]]:
        source = await self.get(source_id)
        changes: dict[str, Any] = {}
        warnings: list[str] = []
        fields = request.model_fields_set
        region = request.region or source.region
        if request.api_key is not None:
            scopes = await fetch_scopes(
                self.http, self.settings.sendgrid_base_url(region), request.api_key
            )
            warnings = missing_scope_warnings(scopes)
            changes |= {
                "api_key_encrypted": self.box.encrypt(request.api_key),
                "api_key_fingerprint": fingerprint(request.api_key),
                "scopes": scopes,
            }
        if "webhook_verification_key" in fields:
            changes["webhook_verification_key"] = request.webhook_verification_key
        if request.region is not None:
            changes["region"] = request.region
        if "sync_interval" in fields:
            changes["sync_interval_seconds"] = (
                int(request.sync_interval.total_seconds()) if request.sync_interval else None
            )
        if request.name is not None:
            # Attach both schemas before the connection is taken from the pool (SQLite).
            use_source_schema(self.engine, source.schema_name)
            use_source_schema(self.engine, self._schema_for(request.name.strip()))
        async with self.engine.begin() as connection:
            if request.name is not None and request.name.strip() != source.name:
                changes |= await self._rename(connection, source, request.name.strip())
            if changes:
                changes["updated_at"] = utcnow()
                await connection.execute(
                    sources.update().where(sources.c.id == source.id).values(changes)
                )
        return await self.get(source.id), warnings

    async def remove(self, source_id: str, *, drop_data: bool) -> None:
        """Stop a source. Its data stays (and its name stays taken) unless drop_data is set."""
        source = await self.get(source_id, include_removed=drop_data)
        if not drop_data:
            async with self.engine.begin() as connection:
                await connection.execute(
                    sources.update().where(sources.c.id == source.id).values(deleted_at=utcnow())
                )
            return
        use_source_schema(self.engine, source.schema_name)
        async with self.engine.begin() as connection:
            await warehouse.drop_source_schema(connection, source.schema_name)
            await connection.execute(sources.delete().where(sources.c.id == source.id))
        await self._forget_sqlite_files(source.schema_name)

    # --- helpers -------------------------------------------------------------------------

    def _schema_for(self, name: str) -> str:
        try:
            return schema_name_for(name)
        except InvalidIdentifier as exc:
            raise Unprocessable(f"name {name!r} cannot be used: {exc}") from None

    async def _check_free(self, connection: AsyncConnection, name: str, schema: str) -> None:
        taken = (
            await connection.execute(
                sa.select(sources.c.name, sources.c.deleted_at).where(
                    (sources.c.schema_name == schema) | (sources.c.name == name)
                )
            )
        ).first()
        if taken is not None:
            if taken.deleted_at is not None:
                raise Conflict(
                    f"schema {schema!r} still holds the data of the removed source "
                    f"{taken.name!r}; delete it with ?drop_data=true or choose another name"
                )
            raise Conflict(f"schema {schema!r} is already used by the source {taken.name!r}")
        if is_sqlite(self.engine):
            count = await connection.scalar(sa.select(sa.func.count()).select_from(sources))
            if (count or 0) >= SQLITE_MAX_ATTACHED:
                raise Conflict(
                    f"the embedded SQLite warehouse holds at most {SQLITE_MAX_ATTACHED} sources; "
                    "set DATABASE_URL to a PostgreSQL database for more"
                )
        else:
            exists = await connection.scalar(
                sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            )
            if exists:
                raise Conflict(
                    f"a schema named {schema!r} already exists in this database and does not "
                    "belong to sendgrid-source; choose another name"
                )

    async def _rename(
        self, connection: AsyncConnection, source: Source, name: str
    ) -> dict[str, Any]:
        schema = self._schema_for(name)
        if schema == source.schema_name:
            return {"name": name}
        if await warehouse.source_has_data(connection, source.schema_name):
            raise Conflict(
                f"the source cannot be renamed: its schema {source.schema_name!r} already holds "
                "data, and renaming would move it to a new schema"
            )
        await self._check_free(connection, name, schema)
        await warehouse.drop_source_schema(connection, source.schema_name)
        await warehouse.create_source_schema(connection, schema)
        return {"name": name, "schema_name": schema}

    async def _forget_sqlite_files(self, schema: str) -> None:
        if not is_sqlite(self.engine):
            return
        forget_source_schema(self.engine, schema)
        # Pooled connections still hold the file attached; close them before removing it.
        await self.engine.dispose()
        path = sqlite_schema_path(self.settings.DATABASE_URL, schema)
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
