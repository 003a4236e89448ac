"""`sendgrid-source migrate`, and the revision check every registry command makes first."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from sendgrid_source.output import DATABASE_ERRORS, database_problem, out
from shared.db import create_engine
from shared.migrate import MIGRATIONS, upgrade_control_schema, upgrade_source_schemas
from shared.settings import Settings
from shared.tables import CONTROL_SCHEMA


async def control_revision(engine: AsyncEngine) -> str | None:
    def current(connection: sa.Connection) -> str | None:
        postgres = connection.dialect.name == "postgresql"
        opts = {"version_table_schema": CONTROL_SCHEMA} if postgres else {}
        return MigrationContext.configure(connection, opts=opts).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(current)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


async def _upgrade_sources(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        return await upgrade_source_schemas(engine)
    finally:
        await engine.dispose()


async def _revision_of(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        return await control_revision(engine)
    finally:
        await engine.dispose()


def migrate(settings: Settings) -> None:
    """Upgrade the control schema, then every source schema, and say what changed."""
    console = out()
    try:
        before = asyncio.run(_revision_of(settings.DATABASE_URL))
        upgrade_control_schema(settings.DATABASE_URL)
        upgraded = asyncio.run(_upgrade_sources(settings.DATABASE_URL))
    except DATABASE_ERRORS as exc:
        database_problem(settings, exc)
    head = head_revision()
    if before == head:
        console.print(f"control schema: already at revision {head}")
    else:
        console.print(f"control schema: upgraded from {before or 'an empty database'} to {head}")
    if upgraded:
        console.print(f"source schemas: upgraded {', '.join(upgraded)}")
    else:
        console.print("source schemas: all up to date")
