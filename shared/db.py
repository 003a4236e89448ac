"""Database engines for both backends, and SQLite's stand-in for schemas.

PostgreSQL: control tables are written to the `sendgrid_source` schema through SQLAlchemy's
schema translation, so table definitions stay backend-neutral.

SQLite: a source's schema is a database file beside the main one, ATTACHed under the schema
name on every pooled connection, so `SELECT * FROM sendgrid.delivered` reads the same on both
backends. WAL mode lets readers run while the ingest service writes.
"""

from __future__ import annotations

import sqlite3
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from shared.identifiers import validate_schema_name
from shared.tables import CONTROL_SCHEMA

# SQLite's compile-time limit on attached databases (SQLITE_MAX_ATTACHED, 10 by default).
SQLITE_MAX_ATTACHED = 10

_attached_schemas: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()


def sqlite_schema_path(database_url: str, schema: str) -> Path:
    main = Path(make_url(database_url).database or "")
    return main.with_name(f"{main.stem}.{validate_schema_name(schema)}.db")


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "")
        database.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 60})
        schemas: set[str] = set()
        _attached_schemas[engine.sync_engine] = schemas

        def sync_attachments(dbapi_connection: Any, record: ConnectionPoolEntry, _: Any) -> None:
            _sync_attachments(dbapi_connection, record, schemas)

        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "checkout", sync_attachments)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        execution_options={"schema_translate_map": {None: CONTROL_SCHEMA}},
        connect_args={"server_settings": {"application_name": "sendgrid-source"}},
    )


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def use_source_schema(engine: AsyncEngine, schema: str) -> None:
    """Make a source's schema reachable on every connection handed out from now on."""
    if is_sqlite(engine):
        _attached_schemas[engine.sync_engine].add(validate_schema_name(schema))


def forget_source_schema(engine: AsyncEngine, schema: str) -> None:
    if is_sqlite(engine):
        _attached_schemas[engine.sync_engine].discard(schema)


def _configure_sqlite(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Schemas registered by another process (the other service) are found on disk via the
    # sources table, so a fresh connection sees every source.
    try:
        cursor.execute("SELECT schema_name FROM sources")
        record.info["known"] = {row[0] for row in cursor.fetchall()}
    except sqlite3.OperationalError:
        record.info["known"] = set()
    except Exception as exc:  # aiosqlite wraps sqlite3 errors in its adapter's classes
        if "no such table" not in str(exc):
            raise
        record.info["known"] = set()
    cursor.close()
    record.info["attached"] = set()


def _sync_attachments(
    dbapi_connection: Any, record: ConnectionPoolEntry, engine_schemas: set[str]
) -> None:
    engine_schemas |= record.info.pop("known", set())
    attached: set[str] = record.info["attached"]
    database = dbapi_connection.cursor()
    main_path = _main_database_path(database)
    for schema in sorted(attached - engine_schemas):
        database.execute(f"DETACH DATABASE {validate_schema_name(schema)}")
        attached.discard(schema)
    for schema in sorted(engine_schemas - attached):
        path = main_path.with_name(f"{main_path.stem}.{validate_schema_name(schema)}.db")
        database.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
        database.execute(f"PRAGMA {schema}.journal_mode=WAL")
        attached.add(schema)
    database.close()


def _main_database_path(cursor: Any) -> Path:
    cursor.execute("PRAGMA database_list")
    for _, name, path in cursor.fetchall():
        if name == "main":
            return Path(path)
    raise RuntimeError("SQLite connection has no main database")


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))
