"""Registering, changing and removing sources: the admin operations behind `/sources` and
`sendgrid-source sources`.

Each step has its own module: rows (`source_rows`), secrets (`source_secrets`), the API key
check against SendGrid (`sendgrid_scopes`), names (`source_names`), schema DDL (`warehouse`),
the webhook statistics (`webhook_summary`), SQLite's files (`sqlite_files`), and the
account's Event Webhook: configuring it (`webhook_setup`) and deleting it (`webhook_removal`).
Only these operations need an HTTP client; the sync service reads sources through `SourceRows`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import warehouse
from shared.clickhouse import ClickHouse
from shared.clickhouse_shards import run_statements
from shared.clickhouse_tables import drop_source_database_statements
from shared.clock import utcnow
from shared.db import attach_new_schema
from shared.errors import Conflict, Unprocessable
from shared.event_counts import event_counts
from shared.schemas import SourceCreate, SourcePublic, SourceRemoved, SourceUpdate, WebhookSummary
from shared.sendgrid_scopes import fetch_scopes, missing_scope_warnings
from shared.settings import Settings
from shared.source_names import check_free, schema_for
from shared.source_public import source_public
from shared.source_rows import Source, SourceRows
from shared.source_secrets import SourceSecrets
from shared.sqlite_files import remove_schema_files
from shared.tables import SOURCE_SCHEMA_VERSION, source_tables, sources, webhook_stats
from shared.webhook_arrivals import TestArrivals
from shared.webhook_permissions import WebhookPermissions
from shared.webhook_removal import remove_webhook as remove_webhook_of
from shared.webhook_setup import WebhookSetup
from shared.webhook_summary import webhook_summary


class SourceRegistry:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        arrivals: TestArrivals | None = None,
        on_key_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.http = http
        self.rows = SourceRows(engine)
        # The event tables' counts, from the warehouse WAREHOUSE_URL names (`close` ends them).
        self.counts = event_counts(settings, engine)
        self.secrets = SourceSecrets(settings.secret_key)
        self.webhooks = WebhookSetup(
            engine,
            settings,
            self.secrets,
            http,
            arrivals=arrivals,
            on_key_changed=on_key_changed,
        )

    def public(
        self,
        source: Source,
        *,
        warnings: list[str] | None = None,
        webhook: WebhookSummary | None = None,
    ) -> SourcePublic:
        return source_public(
            source, self.settings, self.secrets, warnings=warnings, webhook=webhook
        )

    async def describe(self, source_id: str) -> SourcePublic:
        """One active source with what its webhook has received (`GET /sources/{id}`)."""
        source = await self.rows.get(source_id)
        return self.public(source, webhook=await webhook_summary(self.engine, self.counts, source))

    async def close(self) -> None:
        """End the warehouse connections the registry opened (none on SQL)."""
        await self.counts.close()

    async def _scopes(self, api_key: str, region: str) -> list[str]:
        return await fetch_scopes(self.http, self.settings.sendgrid_base_url(region), api_key)

    async def create(self, request: SourceCreate) -> tuple[Source, list[str]]:
        """Validate the name and the key, then create the row, the schema and its tables."""
        schema = schema_for(request.name)
        scopes = await self._scopes(request.api_key, request.region)
        now = utcnow()
        source_id = str(uuid.uuid4())
        name = request.name.strip()
        values: dict[str, Any] = {
            "id": source_id,
            "name": name,
            "schema_name": schema,
            "region": request.region,
            **self.secrets.api_key_columns(request.api_key),
            "scopes": scopes,
            "webhook_token_encrypted": self.secrets.new_webhook_token_encrypted(),
            "webhook_verification_key": request.webhook_verification_key,
            "sync_interval_seconds": (
                int(request.sync_interval.total_seconds()) if request.sync_interval else None
            ),
            "collections": request.collections,
            "stats_timezone": request.stats_timezone,
            "completeness_repair": request.completeness_repair,
            "backfill_days": request.backfill_days,
            "schema_version": SOURCE_SCHEMA_VERSION,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        try:
            async with self.engine.begin() as connection:
                await check_free(connection, name, schema)
                # Before the first write: SQLite attaches only outside a transaction.
                await attach_new_schema(connection, schema)
                await connection.execute(sources.insert().values(values))
                await connection.execute(webhook_stats.insert().values(source_id=source_id))
                await warehouse.create_source_schema(connection, schema)
        except IntegrityError:
            raise Conflict(
                f"a source named {request.name!r} (schema {schema!r}) was registered at the "
                "same moment; choose another name"
            ) from None
        warnings = missing_scope_warnings(scopes, request.collections)
        if request.configure_webhook or request.adopt_webhook_id is not None:
            source, more = await self.configure_webhook(source_id, request.adopt_webhook_id)
            return source, warnings + more
        note = WebhookPermissions.of(scopes).registration_note(source_id)
        return await self.rows.get(source_id), warnings + ([note] if note else [])

    async def configure_webhook(
        self, source_id: str, adopt_webhook_id: str | None = None
    ) -> tuple[Source, list[str]]:
        """Configure (or re-configure) the source's Event Webhook in SendGrid."""
        source = await self.rows.get(source_id)
        warnings = await self.webhooks.configure(source, adopt_webhook_id)
        return await self.rows.get(source_id), warnings

    async def update(self, source_id: str, request: SourceUpdate) -> tuple[Source, list[str]]:
        """Change the fields present in `request`; warnings name scopes a new key lacks."""
        source = await self.rows.get(source_id)
        changes: dict[str, Any] = {}
        warnings: list[str] = []
        fields = request.model_fields_set
        if request.api_key is not None:
            scopes = await self._scopes(request.api_key, request.region or source.region)
            chosen = request.collections if "collections" in fields else source.collections
            warnings = missing_scope_warnings(scopes, chosen)
            changes |= {**self.secrets.api_key_columns(request.api_key), "scopes": scopes}
        if "webhook_verification_key" in fields:
            changes["webhook_verification_key"] = request.webhook_verification_key
        if request.region is not None:
            changes["region"] = request.region
        if request.webhook_repair is not None:
            changes["webhook_repair"] = request.webhook_repair
        if "collections" in fields:
            changes["collections"] = request.collections
        if request.completeness_repair is not None:
            changes["completeness_repair"] = request.completeness_repair
        new_zone = request.stats_timezone not in (None, source.stats_timezone)
        if new_zone:
            # The days reconciled so far were cut in the former zone: forgotten, and due again.
            changes |= {"stats_timezone": request.stats_timezone, "completeness_checked_at": None}
        if "sync_interval" in fields:
            changes["sync_interval_seconds"] = (
                int(request.sync_interval.total_seconds()) if request.sync_interval else None
            )
        async with self.engine.begin() as connection:
            if new_zone:
                await connection.execute(source_tables(source.schema_name).completeness.delete())
            if request.name is not None and request.name.strip() != source.name:
                changes |= await self._rename(connection, source, request.name.strip())
            if changes:
                changes["updated_at"] = utcnow()
                await connection.execute(
                    sources.update().where(sources.c.id == source.id).values(changes)
                )
        return await self.rows.get(source.id), warnings

    async def remove(
        self,
        source_id: str,
        *,
        drop_data: bool,
        remove_webhook: bool = False,
        remove_adopted_webhook: bool = False,
    ) -> SourceRemoved:
        """Stop a source. Its data stays (and its name stays taken) unless drop_data is set;
        its webhook is deleted from SendGrid only when asked (an adopted one only when asked
        twice). A failed deletion leaves the source as it was."""
        if remove_adopted_webhook and not remove_webhook:
            raise Unprocessable("remove_adopted_webhook=true goes with remove_webhook=true")
        source = await self.rows.get(source_id, include_removed=drop_data)
        done = "the webhook in SendGrid was left as it is (remove_webhook was not asked)"
        gone = False
        if remove_webhook:
            gone, done = await remove_webhook_of(
                self.webhooks.client(source), source, include_adopted=remove_adopted_webhook
            )
        removed = SourceRemoved(
            id=source.id, name=source.name, data_dropped=drop_data, webhook=done
        )
        if not drop_data:
            forgotten = {"webhook_id": None, "webhook_managed": None} if gone else {}
            async with self.engine.begin() as connection:
                await connection.execute(
                    sources.update()
                    .where(sources.c.id == source.id)
                    .values(deleted_at=utcnow(), **forgotten)
                )
            return removed
        if self.settings.clickhouse_url:
            # The events first (on every shard of a cluster): a failure leaves the source
            # registered, to delete again.
            clickhouse = ClickHouse(self.settings.clickhouse_url, size=1)
            try:
                await run_statements(
                    clickhouse, drop_source_database_statements(source.schema_name)
                )
            finally:
                await clickhouse.close()
        async with self.engine.begin() as connection:
            await warehouse.drop_source_schema(connection, source.schema_name)
            await connection.execute(sources.delete().where(sources.c.id == source.id))
        await remove_schema_files(self.engine, self.settings.DATABASE_URL, source.schema_name)
        return removed

    async def _rename(
        self, connection: AsyncConnection, source: Source, name: str
    ) -> dict[str, Any]:
        schema = schema_for(name)
        if schema == source.schema_name:
            return {"name": name}
        if self.settings.clickhouse_url:
            raise Conflict(
                f"the source cannot be renamed to {name!r}: its events are in ClickHouse "
                f"(database {source.schema_name!r}), which is named for the source, and "
                "renaming would move them; choose a name giving the same schema, or "
                "register a new source"
            )
        if await warehouse.source_has_data(connection, source.schema_name):
            raise Conflict(
                f"the source cannot be renamed: its schema {source.schema_name!r} already holds "
                "data, and renaming would move it to a new schema"
            )
        await check_free(connection, name, schema)
        await attach_new_schema(connection, schema)
        await warehouse.drop_source_schema(connection, source.schema_name)
        await warehouse.create_source_schema(connection, schema)
        return {"name": name, "schema_name": schema}
