"""Rows as value tuples for the bulk write paths (COPY, executemany) of both services.

SQLAlchemy's Core insert converts each value of each row through its type objects, a Python
call per value; the bulk paths skip that. They send JSON as text made by orjson, and leave
a column's own conversion only where the dialect has one (datetimes as text on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

Converters = list[tuple[int, Callable[[Any], Any]]]


def is_json(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.JSON) or column.type.__class__.__name__ == "JSONB"


def dialect_converters(table: sa.Table, columns: Sequence[str], dialect: sa.Dialect) -> Converters:
    """(position, conversion) for each of `columns` the dialect converts; JSON columns are
    left out, their values being JSON text already."""
    converters: Converters = []
    for position, name in enumerate(columns):
        column = table.c[name]
        if is_json(column):
            continue
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            converters.append((position, process))
    return converters


def converted(values: list[tuple[Any, ...]], converters: Converters) -> list[tuple[Any, ...]]:
    if not converters:
        return values
    result = []
    for record in values:
        row = list(record)
        for position, process in converters:
            row[position] = process(row[position])
        result.append(tuple(row))
    return result


def keys_in_json(dialect_name: str, column: str) -> str:
    """`JOIN` source and condition matching `t.<column>` against keys bound as the single
    parameter, a JSON array of strings (`dump_json(keys)`). asyncpg encodes a `text[]`
    element by element in Python, about four times the CPU of one orjson dump, and SQLite
    limits the parameters of an `IN (...)`."""
    if dialect_name == "postgresql":
        return f"jsonb_array_elements_text($1::text::jsonb) AS u(key) ON t.{column} = u.key"
    return f"json_each(?) AS u ON t.{column} = u.value"
