"""Rows as value tuples for the bulk write paths (COPY, executemany) of both services.

SQLAlchemy's Core insert converts each value of each row through its type objects, a Python
call per value; the bulk paths skip that. They send JSON as text made by orjson, and leave
a column's own conversion only where the dialect has one (datetimes as text on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
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
        if process is None:
            continue
        if dialect.name == "sqlite" and _is_datetime(column):
            converters.append((position, sqlite_datetime_text(process)))
        else:
            converters.append((position, process))
    return converters


def _is_datetime(column: sa.Column[Any]) -> bool:
    # A TypeDecorator (UTCDateTime) names its underlying type in `impl`.
    return isinstance(getattr(column.type, "impl", column.type), sa.DateTime)


_SAMPLES = (datetime(2025, 10, 9, 8, 53, 20, tzinfo=UTC), datetime(5, 1, 2, 3, 4, 5, 6))


def sqlite_datetime_text(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQLAlchemy's SQLite text of a datetime (`process`, its bind processor), made by
    `isoformat` in C rather than by formatting seven fields in Python; the text of the last
    value is kept, since every row of a request shares its `received_at`. Anything but a
    datetime goes to `process`, as does every value if the two texts ever differ."""
    if any(sample.isoformat(" ", "microseconds")[:26] != process(sample) for sample in _SAMPLES):
        return process
    last: list[Any] = [None, None]

    def convert(value: Any) -> Any:
        if value is last[0]:
            return last[1]
        if type(value) is not datetime:
            return process(value)
        # Years are four digits (1 to 9999); the offset after the microseconds is dropped,
        # as SQLAlchemy drops it.
        text = value.isoformat(" ", "microseconds")[:26]
        last[0], last[1] = value, text
        return text

    return convert


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
