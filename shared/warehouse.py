"""Creating, upgrading and dropping a source's schema: its tables and the `activity` view."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import attach_new_schema
from shared.identifiers import validate_schema_name
from shared.tables import SOURCE_SCHEMA_VERSION, SourceTables, source_tables


def _activity_view_sql(connection: AsyncConnection, schema: str) -> str:
    # SQLite resolves names in a view body inside the view's own database, and refuses
    # qualified names there, so the view is compiled from unqualified copies of the tables.
    dialect = connection.dialect
    tables = source_tables(None if dialect.name == "sqlite" else schema)
    body = tables.activity_select().compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return f"CREATE VIEW {schema}.activity AS {body}"


async def create_source_schema(connection: AsyncConnection, schema: str) -> None:
    """Create the schema, every event and object table, and the `activity` view.

    On SQLite the schema's file is attached first; the connection must not have written yet
    unless it is attached already (see `attach_new_schema`).
    """
    schema = validate_schema_name(schema)
    await attach_new_schema(connection, schema)
    if connection.dialect.name == "postgresql":
        await connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    tables = source_tables(schema)
    await connection.run_sync(tables.metadata.create_all)
    await connection.run_sync(_create_missing_indexes, tables)
    await connection.execute(sa.text(f"DROP VIEW IF EXISTS {schema}.activity"))
    await connection.execute(sa.text(_activity_view_sql(connection, schema)))


async def upgrade_source_schema(connection: AsyncConnection, schema: str, version: int) -> int:
    """Bring a source schema from `version` to SOURCE_SCHEMA_VERSION; returns the new version.

    Version 1 is the initial layout; later versions add their steps here, in order. Creating
    missing tables and indexes (version 4: `ix_rejected_received_at`; 5: each event table's
    index on `timestamp`, whose building reads the table once) and rebuilding the view
    are safe to repeat, so every upgrade ends with them.
    """
    schema = validate_schema_name(schema)
    tables = source_tables(schema)
    if version < 2:  # object tables gain `content_hash` (NULL: rewritten by the next sync)
        for table in tables.objects.values():
            if not await _has_column(connection, table, "content_hash"):
                await connection.execute(
                    sa.text(f"ALTER TABLE {schema}.{table.name} ADD COLUMN content_hash BIGINT")
                )
    if version < 6:
        # Event rows say where they came from; those stored so far came by the webhook. A
        # constant default is a catalogue change on PostgreSQL, no rewrite of the table.
        for table in tables.events.values():
            if not await _has_column(connection, table, "origin"):
                await connection.execute(
                    sa.text(
                        f"ALTER TABLE {schema}.{table.name} "
                        "ADD COLUMN origin TEXT NOT NULL DEFAULT 'webhook'"
                    )
                )
        # The `received_at` indexes gain `origin` (what the webhook received lately is
        # counted from them alone): dropped here, made again below with it.
        for table in tables.events.values():
            await connection.execute(
                sa.text(f"DROP INDEX IF EXISTS {schema}.ix_{table.name}_received_at")
            )
        # completeness keeps the stored counts before a repair backfill
        for name in ("stored_before_repair", "repaired_at"):
            column = tables.completeness.c[name]
            if not await _has_column(connection, tables.completeness, name):
                kind = column.type.compile(connection.dialect)
                await connection.execute(
                    sa.text(f"ALTER TABLE {schema}.completeness ADD COLUMN {name} {kind}")
                )
    await create_source_schema(connection, schema)
    return SOURCE_SCHEMA_VERSION


def _create_missing_indexes(sync_connection: sa.Connection, tables: SourceTables) -> None:
    """`create_all` makes a table's indexes only with the table: an index a later version
    adds to a table that exists already is made here."""
    for table in tables.metadata.tables.values():
        for index in table.indexes:
            index.create(sync_connection, checkfirst=True)


async def _has_column(connection: AsyncConnection, table: sa.Table, column: str) -> bool:
    def inspect(sync_connection: sa.Connection) -> bool:
        inspector = sa.inspect(sync_connection)
        if not inspector.has_table(table.name, schema=table.schema):
            return True  # created complete by create_source_schema
        names = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
        return column in names

    return await connection.run_sync(inspect)


async def drop_source_schema(connection: AsyncConnection, schema: str) -> None:
    schema = validate_schema_name(schema)
    if connection.dialect.name == "postgresql":
        await connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        return
    await connection.execute(sa.text(f"DROP VIEW IF EXISTS {schema}.activity"))
    await connection.run_sync(source_tables(schema).metadata.drop_all)


async def source_has_data(connection: AsyncConnection, schema: str) -> bool:
    tables = source_tables(validate_schema_name(schema))
    for table in [*tables.events.values(), *tables.objects.values(), tables.rejected]:
        found = await connection.scalar(sa.select(sa.literal(1)).select_from(table).limit(1))
        if found is not None:
            return True
    return False
