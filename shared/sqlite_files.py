"""Deleting the files of a dropped source schema on SQLite (PostgreSQL drops the schema)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import is_sqlite, sqlite_schema_path


async def remove_schema_files(engine: AsyncEngine, database_url: str, schema: str) -> None:
    """Remove the schema's database file and its WAL files; a no-op on PostgreSQL.

    Disposes the engine's pool: its idle connections still hold the file attached.
    """
    if not is_sqlite(engine):
        return
    await engine.dispose()
    path = sqlite_schema_path(database_url, schema)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
