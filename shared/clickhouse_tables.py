"""A source's event tables and `activity` view in ClickHouse, made from the same table
definitions as on PostgreSQL and SQLite (`shared.tables`), so the columns cannot drift.

Per source, one database named as its schema; per event type, one table:

    ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(`timestamp`) ORDER BY id

laid out by `shared.clickhouse_layout`: on a cluster, that table is each shard's
`<table>_local`, and `<table>` a Distributed table over them sharded by `sipHash64(id)`.

ClickHouse has no unique key: the writer looks ids up before inserting
(`shared.clickhouse_event_rows`), and the sorting key on `id` makes every copy that slips in
anyway (two receivers racing on one resend) collapse into one when parts merge. Until then
each read says `FINAL`, as the `activity` view does in every branch, so an event counts once.

The SQL stays in the subset Debian's ClickHouse 18.16 and current releases share (the tests
run every statement on both): `DateTime('UTC')` rather than `DateTime64`, JSON kept as
`String`, `UInt8` for booleans, no Nullable column in a key.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.bulk_values import is_json
from shared.clickhouse_layout import (
    Statement,
    database_statement,
    drop_database_statement,
    table_statements,
)
from shared.clickhouse_layout import quoted as quoted  # one definition, long imported from here
from shared.identifiers import validate_schema_name
from shared.tables import SourceTables, source_tables


def base_type(column: sa.Column[Any]) -> str:
    """The ClickHouse type of a column's values, without Nullable."""
    if is_json(column):
        return "String"  # JSON text, as received (18.16 has no JSON type)
    # A TypeDecorator (UTCDateTime) names its underlying type in `impl`.
    kind = getattr(column.type, "impl", column.type)
    if isinstance(kind, sa.Boolean):
        return "UInt8"
    if isinstance(kind, sa.BigInteger | sa.Integer):
        return "Int64"
    if isinstance(kind, sa.DateTime):
        return "DateTime('UTC')"  # whole seconds; SendGrid's timestamps are whole seconds
    if isinstance(kind, sa.Date):
        return "Date"  # the days of `stats_daily`
    if isinstance(kind, sa.String | sa.Text):
        return "String"
    raise TypeError(f"no ClickHouse type for column {column.name!r} ({column.type!r})")


def column_type(column: sa.Column[Any]) -> str:
    kind = base_type(column)
    return f"Nullable({kind})" if column.nullable else kind


def event_table_statements(table: sa.Table, cluster: str | None) -> list[Statement]:
    assert table.schema is not None
    return table_statements(
        cluster,
        table.schema,
        table.name,
        [(column.name, column_type(column)) for column in table.columns],
        "ReplacingMergeTree",
        order_by=["id"],
        partition_by="toYYYYMM(`timestamp`)",
    )


def activity_view_ddl(tables: SourceTables) -> str:
    """Every event table with the union of all event columns (NULL where a table lacks one),
    each branch read with FINAL. Every branch casts each column to one type (Nullable unless
    every table has it NOT NULL), which UNION ALL needs on older servers."""
    assert tables.schema is not None
    columns: dict[str, sa.Column[Any]] = {}
    nullable: dict[str, bool] = {}
    for table in tables.events.values():
        for column in table.columns:
            columns.setdefault(column.name, column)
            nullable[column.name] = nullable.get(column.name, False) or bool(column.nullable)
    for name in columns:
        if any(name not in table.c for table in tables.events.values()):
            nullable[name] = True
    types = {
        name: f"Nullable({base_type(column)})" if nullable[name] else base_type(column)
        for name, column in columns.items()
    }
    branches = []
    for table in tables.events.values():
        values = ", ".join(
            f"CAST({quoted(name) if name in table.c else 'NULL'} AS {types[name]}) "
            f"AS {quoted(name)}"
            for name in columns
        )
        branches.append(f"SELECT {values} FROM {quoted(tables.schema)}.{quoted(table.name)} FINAL")
    return (
        f"CREATE VIEW IF NOT EXISTS {quoted(tables.schema)}.`activity` AS\n"
        + "\nUNION ALL\n".join(branches)
    )


def drop_source_database_statements(schema: str) -> list[Statement]:
    return [drop_database_statement(validate_schema_name(schema))]


def source_database_statements(schema: str, cluster: str | None = None) -> list[Statement]:
    """The statements creating a source's database, event tables and view (on one server, or
    over `cluster`'s shards); each can be run again (IF NOT EXISTS), by any number of
    receivers at once. The view reads the tables the product names (Distributed ones on a
    cluster) with FINAL."""
    schema = validate_schema_name(schema)
    tables = source_tables(schema)
    return [
        database_statement(schema),
        *(s for table in tables.events.values() for s in event_table_statements(table, cluster)),
        Statement(activity_view_ddl(tables)),
    ]
