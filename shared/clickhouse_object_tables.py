"""A source's object tables in ClickHouse (the sync's collections, `shared.object_tables`),
made from the same table definitions as on PostgreSQL and SQLite, so the columns cannot
drift. Per table:

    ENGINE = ReplacingMergeTree(version) ORDER BY <the table's primary key columns>

ClickHouse updates nothing in place: every write of an object is a new row, and `version`
(UInt64, not in `shared.tables`) says which of an object's rows is the latest. The sync gives
each write a larger version than any before it (`sync_service.clickhouse_objects`), so merges
keep the latest sync's row, and every read says `FINAL` until they ran. A deleted object is
one more version with `deleted_at` set; one that comes back is a version without it.

`object_table_ddl` makes one table's statement from the table alone, so a layout spread over
several servers can change how each is made in one place.
"""

from __future__ import annotations

import sqlalchemy as sa

from shared.clickhouse_tables import column_type, quoted, source_database_ddl
from shared.identifiers import validate_schema_name
from shared.tables import source_tables

# The column ordering an object's rows: not in `shared.tables`, as SQL updates in place.
VERSION = "version"


def object_table_ddl(table: sa.Table) -> str:
    assert table.schema is not None
    columns = ",\n  ".join(
        [
            *(f"{quoted(column.name)} {column_type(column)}" for column in table.columns),
            f"{quoted(VERSION)} UInt64",
        ]
    )
    # Key columns are NOT NULL in `shared.object_tables`: no Nullable in the sorting key.
    key = ", ".join(quoted(column.name) for column in table.primary_key.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {quoted(table.schema)}.{quoted(table.name)} (\n"
        f"  {columns}\n"
        f") ENGINE = ReplacingMergeTree({quoted(VERSION)}) ORDER BY ({key})"
    )


def object_tables_ddl(schema: str) -> list[str]:
    return [object_table_ddl(table) for table in source_tables(schema).objects.values()]


def source_warehouse_ddl(schema: str) -> list[str]:
    """Everything of a source's database, event and object tables alike: whichever writer
    comes first (the receiver, a backfill, a sync) makes all of it. Each statement can run
    again (IF NOT EXISTS), so a database made by an older release gains what it lacks."""
    schema = validate_schema_name(schema)
    return [*source_database_ddl(schema), *object_tables_ddl(schema)]
