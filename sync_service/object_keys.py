"""An object table's primary key (one column or several) as the writer handles it.

A key is compared in Python as a tuple of text, one item per key column: the same whether
it was read from a record (an int, a date, a string) or handed back by either backend, so
that a `date` key read back from PostgreSQL and the same key read back as text from SQLite
are one key. The SQL fragments here match such keys against the table's typed columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

Key = tuple[str, ...]


def key_names(table: sa.Table) -> tuple[str, ...]:
    """The names of `table`'s primary key columns, in order."""
    names = tuple(column.name for column in table.primary_key.columns)
    if not names:
        raise ValueError(f"{table.name} has no primary key")
    return names


def key_reader(names: Sequence[str], columns: Sequence[str]) -> Callable[[tuple[Any, ...]], Key]:
    """A function giving the key (columns `names`) of a record laid out as `columns`."""
    positions = [columns.index(name) for name in names]
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (str(values[only]),)
    return lambda values: tuple(str(values[at]) for at in positions)


class ObjectKey:
    """The primary key of `table`, for statements written for `dialect`."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect) -> None:
        self.names = key_names(table)
        self.postgres = dialect.name == "postgresql"
        quote = dialect.identifier_preparer.quote
        self.quoted = tuple(quote(name) for name in self.names)
        # Columns compared as text need no cast; the others are cast to their own type (for
        # the look-up, so the primary key's index serves it) or to text (for the deletion).
        self._types = tuple(
            None if isinstance(table.c[name].type, sa.Text) else table.c[name].type
            for name in self.names
        )
        self._dialect = dialect

    def reader(self, columns: Sequence[str]) -> Callable[[tuple[Any, ...]], Key]:
        """A function giving the key of a record laid out as `columns`."""
        return key_reader(self.names, columns)

    def join_on_json(self) -> str:
        """`JOIN <keys> ON <match>` against the keys bound as one parameter, a JSON array of
        key arrays (`dump_json(keys)`), exposing each key's position in it as `u.n` (from 0).
        One parameter: asyncpg encodes an array element by element in Python, and SQLite
        limits the parameters of a statement."""
        matches = []
        for at, (quoted, kind) in enumerate(zip(self.quoted, self._types, strict=True)):
            if self.postgres:
                value = f"(u.k->>{at})"
                if kind is not None:
                    value = f"CAST({value} AS {kind.compile(self._dialect)})"
            else:
                # SQLite applies the column's affinity to the text it is compared with.
                value = f"json_extract(u.value, '$[{at}]')"
            matches.append(f"t.{quoted} = {value}")
        if self.postgres:
            source = "jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS e(k, n)"
            keys = f"(SELECT k, n - 1 AS n FROM {source}) AS u"
        else:
            keys = "(SELECT value, CAST(key AS INTEGER) AS n FROM json_each(?)) AS u"
        return f"JOIN {keys} ON {' AND '.join(matches)}"

    def as_text(self, alias: str) -> list[str]:
        """Each key column of the row `alias` as text, as keys are compared here."""
        return [
            f"{alias}.{quoted}" if kind is None else f"CAST({alias}.{quoted} AS TEXT)"
            for quoted, kind in zip(self.quoted, self._types, strict=True)
        ]
