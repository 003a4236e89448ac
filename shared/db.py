"""Database engines for both backends, and SQLite's stand-in for schemas.

PostgreSQL: control tables are written to the `sendgrid_source` schema through SQLAlchemy's
schema translation, so table definitions stay backend-neutral.

SQLite: a source's schema is a database file beside the main one, ATTACHed under the schema
name, so `SELECT * FROM sendgrid.delivered` reads the same on both backends. The engine keeps
every connection it hands out attached to exactly the schemas of the `sources` table (read at
each checkout: the other service may have registered or dropped one), plus the schemas this
engine created itself, so callers never attach anything. WAL mode lets readers run while the
ingest service writes.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from shared.identifiers import validate_schema_name
from shared.tables import CONTROL_SCHEMA

# SQLite's compile-time limit on attached databases (SQLITE_MAX_ATTACHED, 10 by default).
SQLITE_MAX_ATTACHED = 10

# Per SQLite engine: schemas it created that are not (yet) in `sources`. A source's schema is
# created in the transaction that inserts its row, so other connections need it before the
# row is visible; scratch schemas (benchmarks, tests) never get a row.
_created_schemas: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()


def sqlite_schema_path(database_url: str, schema: str) -> Path:
    main = Path(make_url(database_url).database or "")
    return main.with_name(f"{main.stem}.{validate_schema_name(schema)}.db")


def create_engine(
    database_url: str, *, pool_size: int = 10, jsonb_as_text: bool = False
) -> AsyncEngine:
    """`jsonb_as_text` (PostgreSQL): jsonb values go to and come from asyncpg as JSON text,
    through asyncpg's own codec, instead of through SQLAlchemy's, which calls Python for
    each value (a COPY of event rows calls it three times a row). For an engine that writes
    JSON as text and reads no JSON column, as the ingest service's writer: reading one
    through it gives text, not the decoded value."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "")
        database.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 60})
        created: set[str] = set()
        _created_schemas[engine.sync_engine] = created

        def sync_attachments(dbapi_connection: Any, record: ConnectionPoolEntry, _: Any) -> None:
            _sync_attachments(dbapi_connection, record, created)

        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "checkout", sync_attachments)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        execution_options={"schema_translate_map": {None: CONTROL_SCHEMA}},
        connect_args={"server_settings": {"application_name": "sendgrid-source"}},
    )
    if jsonb_as_text:
        # Runs after the dialect's own set-up, which installs SQLAlchemy's codec.
        event.listen(engine.sync_engine, "connect", _asyncpg_jsonb_codec)
    return engine


def _asyncpg_jsonb_codec(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    dbapi_connection.run_async(
        lambda connection: connection.reset_type_codec("jsonb", schema="pg_catalog")
    )


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def attach_new_schema(connection: AsyncConnection, schema: str) -> None:
    """SQLite: attach a schema being created, on this connection now and on every connection
    of its engine from now on. A no-op on PostgreSQL, and when already attached.

    Call it before the connection's first write: SQLite refuses ATTACH inside a transaction.
    """
    if connection.dialect.name != "sqlite":
        return
    schema = validate_schema_name(schema)
    _created_schemas[connection.engine.sync_engine].add(schema)
    await connection.run_sync(_attach_on, schema)


def _attach_on(connection: sa.Connection, schema: str) -> None:
    pooled = connection.connection
    attached: set[str] = pooled.info["attached"]
    if schema not in attached:
        cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
        _attach(cursor, schema, attached)
        cursor.close()


def _configure_sqlite(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    record.info["attached"] = set()


def _registered_schemas(cursor: Any) -> set[str]:
    try:
        cursor.execute("SELECT schema_name FROM sources")
    except Exception as exc:  # sqlite3's or, through aiosqlite, its adapter's error classes
        # Not migrated yet. Any other error (a lock, say) must not pass for "no sources":
        # that would detach every schema.
        if "no such table" not in str(exc):
            raise
        return set()
    return {row[0] for row in cursor.fetchall()}


def _sync_attachments(
    dbapi_connection: Any, record: ConnectionPoolEntry, created: set[str]
) -> None:
    # Runs at every checkout, the ingest writer's group commits included: one small SELECT,
    # and ATTACH/DETACH only when the set of sources changed.
    cursor = dbapi_connection.cursor()
    registered = _registered_schemas(cursor)
    created -= registered  # registered now: `sources` keeps it attached from here on
    wanted = registered | created
    attached: set[str] = record.info["attached"]
    for schema in sorted(attached - wanted):
        cursor.execute(f"DETACH DATABASE {validate_schema_name(schema)}")
        attached.discard(schema)
    for schema in sorted(wanted - attached):
        _attach(cursor, schema, attached)
    cursor.close()


def _attach(cursor: Any, schema: str, attached: set[str]) -> None:
    schema = validate_schema_name(schema)
    main_path = _main_database_path(cursor)
    path = main_path.with_name(f"{main_path.stem}.{schema}.db")
    cursor.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
    cursor.execute(f"PRAGMA {schema}.journal_mode=WAL")
    attached.add(schema)


def _main_database_path(cursor: Any) -> Path:
    cursor.execute("PRAGMA database_list")
    for _, name, path in cursor.fetchall():
        if name == "main":
            return Path(path)
    raise RuntimeError("SQLite connection has no main database")


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))
