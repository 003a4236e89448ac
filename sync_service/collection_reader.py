"""What reading one collection means to the run: a `CollectionReader` yields pages of table
rows (a page is what one transaction writes) given a `ReadContext`, and says in the
context's `ReadScope` what it read: the whole collection, whose stored objects missing from
it are then marked deleted, or a window of it, and where the next run starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.settings import Settings
from sync_service.client import SendGridClient
from sync_service.contacts_export import ExportPolicy
from sync_service.cursors import Cursor
from sync_service.object_records import Records, Row

# A page is what one transaction writes: dicts for small collections, records for contacts.
RowPages = AsyncIterator[list[Row] | Records]
Reader = Callable[[SendGridClient, "ReadContext"], RowPages]


@dataclass(frozen=True)
class ReadPolicy:
    """How much of the incremental collections a run reads (from the settings)."""

    suppression_full_scan_interval: timedelta = timedelta(hours=24)
    stats_reread_days: int = 7
    stats_backfill_days: int = 395

    @classmethod
    def of(cls, settings: Settings) -> ReadPolicy:
        return cls(
            settings.SUPPRESSION_FULL_SCAN_INTERVAL,
            settings.STATS_REREAD_DAYS,
            settings.STATS_BACKFILL_DAYS,
        )


@dataclass
class ReadScope:
    """Filled in by a reader as it reads."""

    # A complete listing: stored objects it did not contain are marked deleted at the end.
    complete: bool = True
    # The cursor to keep once the collection has been read and written to the end.
    next_cursor: Cursor | None = None
    # What was read, when it was less than everything, for the run ledger.
    window: str | None = None
    # Set once the reader's first requests are out (the contacts export: once the job is
    # started), so that the run can start the other collections behind it.
    under_way: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class ReadContext:
    synced_at: datetime
    export: ExportPolicy = field(default_factory=ExportPolicy)
    policy: ReadPolicy = field(default_factory=ReadPolicy)
    cursor: Cursor = field(default_factory=Cursor)
    # Raw objects stored by earlier runs, by id; loaded only for readers that ask for them.
    stored: Mapping[str, Any] = field(default_factory=dict)
    scope: ReadScope = field(default_factory=ReadScope)


@dataclass(frozen=True)
class CollectionReader:
    table: str
    api: str | None
    endpoint: str
    # What an empty result means, in words for the run ledger.
    nothing_found: str
    read: Reader
    uses_stored: bool = False
    # Keeps a cursor in `sync_cursors` (see ReadScope.next_cursor).
    uses_cursor: bool = False
