"""Alembic environment: migrates the control schema on SQLite or PostgreSQL (async drivers)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from shared.db import create_engine
from shared.settings import get_settings
from shared.tables import CONTROL_SCHEMA, control_metadata

config = context.config


def _run(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {CONTROL_SCHEMA}"))
    context.configure(
        connection=connection,
        target_metadata=control_metadata,
        version_table_schema=CONTROL_SCHEMA if postgres else None,
        render_as_batch=not postgres,  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().DATABASE_URL
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_run_online())
