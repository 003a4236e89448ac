"""The record layout every object table is written in, and its content hash: one definition
for the record builders (`records`, `contact_records`) and the writer (`listing_writes`).

A record is a tuple of values in the order of its `columns`, with JSON values already as
text (what COPY and executemany take), and `content_hash` last: a 64-bit hash of the
record's JSON values in column order (`raw`, the object as SendGrid sent it, and what is
derived from it with other data, such as `custom_fields`; the typed columns come from the
same JSON). A re-sync compares it with the stored one to tell a changed object from an
unchanged one, so every builder must hash exactly as `content_hash` does.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shared.bulk_values import is_json
from shared.json_codec import canonical_json

Row = dict[str, Any]

# Joins a record's JSON values into the one string hashed: JSON text never holds \x1e or
# \x00 unescaped, so no two different value lists join the same.
JSON_SEPARATOR = "\x1e"
_NO_JSON = "\x00"  # a NULL JSON value


@dataclass(frozen=True)
class Records:
    """A page of rows as value tuples in the order of `columns`, JSON values already as text:
    what COPY and executemany take, built without a dict per row."""

    columns: tuple[str, ...]
    values: list[tuple[Any, ...]]


def content_hash(json_values: Iterable[str | None]) -> int:
    """A stable 64-bit hash (BIGINT) of a record's JSON values, as text, in column order."""
    return joined_json_hash(
        JSON_SEPARATOR.join([_NO_JSON if value is None else value for value in json_values])
    )


def joined_json_hash(joined: str) -> int:
    """`content_hash` of JSON values already joined by JSON_SEPARATOR (none of them NULL):
    for a builder that has the text at hand and would rather not pay for the calls."""
    return int.from_bytes(hashlib.blake2b(joined.encode(), digest_size=8).digest(), signed=True)


def _json_or_none(value: Any) -> str | None:
    # Sorted keys: an object read back from the database (jsonb reorders keys) and merged
    # into a row hashes the same as when it came from SendGrid.
    return None if value is None else canonical_json(value)


def as_records(table: sa.Table, rows: Sequence[Row]) -> Records:
    """Dict rows (the small collections) as records in the table's column order, without
    their `content_hash` (see `with_content_hash`)."""
    columns = tuple(column.name for column in table.columns if column.name != "content_hash")
    json_columns = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
    return Records(
        columns,
        [
            tuple(
                _json_or_none(row[name]) if name in json_columns else row[name] for name in columns
            )
            for row in rows
        ],
    )


def with_content_hash(table: sa.Table, records: Records) -> Records:
    """The records with `content_hash` appended. Records built with their hash
    (`ContactRecords`) are returned as they are."""
    if "content_hash" in records.columns:
        return records
    positions = [i for i, name in enumerate(records.columns) if is_json(table.c[name])]
    if len(positions) == 1:  # itemgetter of one position gives the value, not a tuple
        (only,) = positions
        hashes = [content_hash((values[only],)) for values in records.values]
    else:
        json_values = operator.itemgetter(*positions)
        hashes = [content_hash(json_values(values)) for values in records.values]
    return Records(
        (*records.columns, "content_hash"),
        [(*values, digest) for values, digest in zip(records.values, hashes, strict=True)],
    )
