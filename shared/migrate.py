"""`sendgrid-source migrate`: upgrade the control schema (Alembic), then every source schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import warehouse
from shared.tables import SOURCE_SCHEMA_VERSION, sources

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def upgrade_control_schema(database_url: str) -> None:
    """Alembic upgrade to head. Synchronous: it runs its own event loop (call it from a thread
    when a loop is already running)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


async def upgrade_source_schemas(engine: AsyncEngine) -> list[str]:
    """Upgrade every source schema older than SOURCE_SCHEMA_VERSION; returns those upgraded."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.select(sources.c.id, sources.c.schema_name, sources.c.schema_version).where(
                    sources.c.schema_version < SOURCE_SCHEMA_VERSION
                )
            )
        ).all()
    upgraded = []
    for row in rows:
        async with engine.begin() as connection:
            version = await warehouse.upgrade_source_schema(
                connection, row.schema_name, row.schema_version
            )
            await connection.execute(
                sources.update().where(sources.c.id == row.id).values(schema_version=version)
            )
        upgraded.append(row.schema_name)
    return upgraded
