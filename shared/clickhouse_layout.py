"""How a ClickHouse table is laid out: on one server, or over the shards of a cluster. The one
place that decides it: every table the product keeps in ClickHouse is made by
`table_statements`, given its columns and engine.

On one server a table is what it says. On a cluster (`?cluster=NAME` in the URL) it becomes
two tables, so the product's queries and inserts stay the same:

- `<table>_local` on every shard, with the table's own engine (a ReplacingMergeTree);
- `<table>` on every server, `ENGINE = Distributed(cluster, db, <table>_local,
  sipHash64(key))`: inserts through it go to the shard the key hashes to, reads ask every
  shard.

The shard key is the table's sorting key, so every copy of a row (a resend two receivers
both stored) lands on one shard, where ReplacingMergeTree merges it: `FINAL` through the
Distributed table, which each shard applies to its own part, still sees each row once.

Without ZooKeeper a cluster runs no `ON CLUSTER` DDL, so the statements are run on each
server directly (`shared.clickhouse_shards`); each says where it goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LOCAL_SUFFIX = "_local"


def quoted(name: str) -> str:
    """A column or table name as ClickHouse reads it; names come from the product's models and
    validated schema names (letters, digits, `_`), so quoting is all they need."""
    return f"`{name}`"


def _text(value: str) -> str:
    # Cluster, database and table names are identifiers (validated): nothing to escape.
    return f"'{value}'"


@dataclass(frozen=True)
class Statement:
    """One DDL statement and where it runs: on every shard only (a shard's own table), or on
    every server the product talks to (the shards, and the server the URL names)."""

    sql: str
    shards_only: bool = False


def local_name(table: str) -> str:
    """The name of a table's part on each shard, on a cluster."""
    return table + LOCAL_SUFFIX


def table_statements(
    cluster: str | None,
    database: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    engine: str,
    *,
    order_by: Sequence[str],
    partition_by: str | None = None,
) -> list[Statement]:
    """The statements creating `database.table` with `columns` ((name, ClickHouse type)) and
    `ENGINE = engine [PARTITION BY partition_by] ORDER BY order_by`: the table itself on one
    server (`cluster` None), or its local part on each shard and a Distributed table sharded
    by `sipHash64(order_by)` on a cluster. Each can run again (IF NOT EXISTS)."""
    listed = ",\n  ".join(f"{quoted(name)} {kind}" for name, kind in columns)
    key = ", ".join(quoted(name) for name in order_by)
    sorting = key if len(order_by) == 1 else f"({key})"
    clause = engine + (f" PARTITION BY {partition_by}" if partition_by else "")
    clause += f" ORDER BY {sorting}"

    def create(name: str, engine_clause: str) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {quoted(database)}.{quoted(name)} (\n"
            f"  {listed}\n"
            f") ENGINE = {engine_clause}"
        )

    if cluster is None:
        return [Statement(create(table, clause))]
    distributed = (
        f"Distributed({_text(cluster)}, {_text(database)}, {_text(local_name(table))}, "
        f"sipHash64({key}))"
    )
    return [
        Statement(create(local_name(table), clause), shards_only=True),
        Statement(create(table, distributed)),
    ]


def database_statement(database: str) -> Statement:
    return Statement(f"CREATE DATABASE IF NOT EXISTS {quoted(database)}")


def drop_database_statement(database: str) -> Statement:
    """Dropping a database: on a cluster, on every shard too (its local tables with it)."""
    return Statement(f"DROP DATABASE IF EXISTS {quoted(database)}")
