"""Which database errors mean "another writer got there first": told by the error's code.

Two writers storing the same new key at once end with one of them refused by the key's
unique index, or with the two deadlocked on it; writing again then finds the key stored.
The drivers say so in codes, not only in words: PostgreSQL's SQLSTATE (asyncpg's
`sqlstate`, which SQLAlchemy's asyncpg adapter copies onto the error it raises) and
SQLite's extended result code (`sqlite_errorname`, Python 3.11+). Any other error, a NOT
NULL violation or a lost connection among them, is not a race and is not retried.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

_UNIQUE_VIOLATION = "23505"
_RACE_SQLSTATES = frozenset({_UNIQUE_VIOLATION, "40P01"})  # and deadlock_detected
# SQLite has one writer at a time, so it never deadlocks; a race is a key another process
# (a second ingest worker) stored between the look-up and the insert.
_RACE_SQLITE_ERRORS = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


def lost_write_race(exc: BaseException) -> bool:
    """`exc` (raised through SQLAlchemy, or by asyncpg itself on a raw COPY) is a unique
    violation or a deadlock."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorname", None) in _RACE_SQLITE_ERRORS
    return getattr(error, "sqlstate", None) in _RACE_SQLSTATES


def is_unique_violation(exc: BaseException) -> bool:
    """`exc` is a primary key or unique index refusing a row (not a deadlock)."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorname", None) in _RACE_SQLITE_ERRORS
    return getattr(error, "sqlstate", None) == _UNIQUE_VIOLATION
