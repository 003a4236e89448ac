"""A source's event tables and `activity` view in ClickHouse, made from the same table
definitions as on PostgreSQL and SQLite (`shared.tables`), so the columns cannot drift.

Per source, one database named as its schema; per event type, one table:

    ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(`timestamp`) ORDER BY id

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
from shared.identifiers import validate_schema_name
from shared.tables import SourceTables, source_tables


def quoted(name: str) -> str:
    """A column or table name as ClickHouse reads it; names come from the event models and
    validated schema names (letters, digits, `_`), so quoting is all they need."""
    return f"`{name}`"


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


def event_table_ddl(table: sa.Table) -> str:
    assert table.schema is not None
    columns = ",\n  ".join(
        f"{quoted(column.name)} {column_type(column)}" for column in table.columns
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {quoted(table.schema)}.{quoted(table.name)} (\n"
        f"  {columns}\n"
        ") ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(`timestamp`) ORDER BY id"
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


def drop_source_database_ddl(schema: str) -> str:
    return f"DROP DATABASE IF EXISTS {quoted(validate_schema_name(schema))}"


def source_database_ddl(schema: str) -> list[str]:
    """The statements creating a source's database, event tables and view; each can be run
    again (IF NOT EXISTS), by any number of receivers at once."""
    schema = validate_schema_name(schema)
    tables = source_tables(schema)
    return [
        f"CREATE DATABASE IF NOT EXISTS {quoted(schema)}",
        *(event_table_ddl(table) for table in tables.events.values()),
        activity_view_ddl(tables),
    ]
