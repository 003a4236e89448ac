"""A source's object tables in ClickHouse (the sync's collections, `shared.object_tables`),
made from the same table definitions as on PostgreSQL and SQLite, so the columns cannot
drift. Per table:

    ENGINE = ReplacingMergeTree(version) ORDER BY <the table's primary key columns>

ClickHouse updates nothing in place: every write of an object is a new row, and `version`
(UInt64, not in `shared.tables`) says which of an object's rows is the latest. The sync gives
each write a larger version than any before it (`sync_service.clickhouse_objects`), so merges
keep the latest sync's row, and every read says `FINAL` until they ran. A deleted object is
one more version with `deleted_at` set; one that comes back is a version without it.

On a cluster each object table is laid out as the event tables are (`shared.clickhouse_layout`):
a local table on each shard, and a Distributed one sharded by its key, so every version of an
object lands on one shard and `FINAL` keeps the latest.
"""

from __future__ import annotations

import sqlalchemy as sa

from shared.clickhouse_layout import Statement, table_statements
from shared.clickhouse_tables import column_type, source_database_statements
from shared.identifiers import validate_schema_name
from shared.tables import source_tables

# The column ordering an object's rows: not in `shared.tables`, as SQL updates in place.
VERSION = "version"


def object_table_statements(table: sa.Table, cluster: str | None = None) -> list[Statement]:
    assert table.schema is not None
    return table_statements(
        cluster,
        table.schema,
        table.name,
        [
            *((column.name, column_type(column)) for column in table.columns),
            (VERSION, "UInt64"),
        ],
        f"ReplacingMergeTree(`{VERSION}`)",
        # Key columns are NOT NULL in `shared.object_tables`: no Nullable in the sorting key.
        order_by=[column.name for column in table.primary_key.columns],
    )


def source_warehouse_statements(schema: str, cluster: str | None = None) -> list[Statement]:
    """Everything of a source's database, event and object tables alike: whichever writer
    comes first (the receiver, a backfill, a sync) makes all of it. Each statement can run
    again (IF NOT EXISTS), so a database made by an older release gains what it lacks."""
    schema = validate_schema_name(schema)
    return [
        *source_database_statements(schema, cluster),
        *(
            statement
            for table in source_tables(schema).objects.values()
            for statement in object_table_statements(table, cluster)
        ),
    ]
