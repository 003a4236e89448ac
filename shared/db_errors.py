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
# SQLite refuses a key already stored with one of these two extended codes.
_SQLITE_KEY_REFUSALS = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})
# SQLite has one writer at a time, so it never deadlocks. A race is a key another process (a
# second ingest worker) stored between the look-up and the insert, or a write that another
# connection committed after this transaction had read (SQLITE_BUSY_SNAPSHOT: its snapshot
# is stale, and SQLite refuses at once rather than waiting); writing again in a new
# transaction sees what the other one wrote.
_RACE_SQLITE_ERRORS = _SQLITE_KEY_REFUSALS | {"SQLITE_BUSY_SNAPSHOT"}


def lost_write_race(exc: BaseException) -> bool:
    """`exc` (raised through SQLAlchemy, or by asyncpg itself on a raw COPY) is a unique
    violation, a deadlock, or (SQLite) a stale snapshot."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorname", None) in _RACE_SQLITE_ERRORS
    return getattr(error, "sqlstate", None) in _RACE_SQLSTATES


def is_unique_violation(exc: BaseException) -> bool:
    """`exc` is a primary key or unique index refusing a row: not a deadlock, nor a stale
    SQLite snapshot, which are races the whole group commit is written again for."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorname", None) in _SQLITE_KEY_REFUSALS
    return getattr(error, "sqlstate", None) == _UNIQUE_VIOLATION
