"""Every table of the product, defined once: the control tables and each source's schema.

Control tables (`sources`, `sync_runs`, `sync_run_collections`, `webhook_stats`,
`webhook_findings`) live in the
control schema: `sendgrid_source` on PostgreSQL (via the engine's schema translation), the
main database file on SQLite. Each source's tables live in the source's own schema (an
attached database file on SQLite). Event tables have the columns of their layout in
`shared.event_records`, typed from the event models in `shared.events`; object tables, one
per sync collection, are in `shared.object_tables`; `completeness` holds the daily
reconciliation against SendGrid's statistics (`shared.reconciliation`).

A reader of the schema starts here: `SourceTables` holds every table of a source's schema,
and the column types (`UTCDateTime`, `JSONType`, `shared.column_types`) are the same
everywhere.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from pydantic.fields import FieldInfo

from shared.column_types import JSONType, UTCDateTime
from shared.event_records import (
    CUSTOM_ARGS,
    EVENT_LAYOUTS,
    ID,
    ORIGIN,
    RAW,
    RECEIVED,
    EventLayout,
    stored_type,
)
from shared.identifiers import validate_schema_name
from shared.object_tables import object_tables

CONTROL_SCHEMA = "sendgrid_source"

# Bump when the source-schema layout changes; `shared.warehouse` upgrades older schemas.
# 2: object tables have `content_hash`; 3: the collections of suppressions, templates,
# senders and statistics; 4: `rejected` has an index on `received_at`; 5: event tables
# indexed on `timestamp`, and `completeness`; 6: `completeness` keeps the counts before a
# repair, and event tables say where each event came from (`origin`).
SOURCE_SCHEMA_VERSION = 6


control_metadata = sa.MetaData()

sources = sa.Table(
    "sources",
    control_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("schema_name", sa.String(63), nullable=False, unique=True),
    sa.Column("region", sa.String(16), nullable=False, server_default="global"),
    sa.Column("api_key_encrypted", sa.Text, nullable=False),
    sa.Column("api_key_fingerprint", sa.String(12), nullable=False),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("webhook_token_encrypted", sa.Text, nullable=False),
    sa.Column("webhook_verification_key", sa.Text),
    # The SendGrid Event Webhook the product manages for this source (migration 0002): its id,
    # whether the product `created` it or `adopted` one the account had, whether drift is
    # repaired, and the outcome of the last test batch SendGrid was asked to send.
    sa.Column("webhook_id", sa.String(64)),
    sa.Column("webhook_managed", sa.String(16)),  # null (set up by hand), created, adopted
    sa.Column("webhook_repair", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("webhook_test_status", sa.String(16)),  # null, arrived, not_arrived, failed
    sa.Column("webhook_tested_at", UTCDateTime),
    sa.Column("webhook_checked_at", UTCDateTime),
    sa.Column("sync_interval_seconds", sa.Integer),
    # The collections (shared.collections) this source syncs; NULL: all of them (0003).
    sa.Column("collections", JSONType),
    # The IANA time zone SendGrid's daily statistics are counted in (the account's, which no
    # API reveals), and the last reconciliation of the stored events against them (0004).
    sa.Column("stats_timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("completeness_checked_at", UTCDateTime),
    sa.Column("completeness_error", sa.Text),
    # Whether a day the reconciliation finds incomplete is backfilled from Email Logs, and
    # how many days of history the source was registered with (0005).
    sa.Column("completeness_repair", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("backfill_days", sa.Integer),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Removed sources keep their row (and data) so the schema name stays taken.
    sa.Column("deleted_at", UTCDateTime),
)

sync_runs = sa.Table(
    "sync_runs",
    control_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "source_id", sa.String(36), sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("trigger", sa.String(16), nullable=False),  # initial, scheduled, manual
    sa.Column("status", sa.String(16), nullable=False),  # running, succeeded, partial, failed
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    # A run whose heartbeat stops (the process died) is later shown as failed.
    sa.Column("heartbeat_at", UTCDateTime),
    sa.Column("worker", sa.Text),
    sa.Column("error", sa.Text),
    sa.Index("ix_sync_runs_source_started", "source_id", "started_at"),
)

sync_run_collections = sa.Table(
    "sync_run_collections",
    control_metadata,
    sa.Column(
        "run_id", sa.String(36), sa.ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("collection", sa.String(32), primary_key=True),
    sa.Column("api", sa.String(16)),  # marketing (new API) or legacy (contactdb)
    sa.Column("status", sa.String(16), nullable=False),  # succeeded, failed, forbidden, empty...
    sa.Column("rows_upserted", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_deleted", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("message", sa.Text),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
)

# Backfills of a source's events from SendGrid's Email Logs (0005). The row is the
# backfill's progress: messages created before `reached` have all been read and written, so
# an interrupted backfill resumes from there, and the counts are what it came to.
backfills = sa.Table(
    "backfills",
    control_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "source_id", sa.String(36), sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("trigger", sa.String(16), nullable=False),  # manual, initial, repair
    # running, interrupted (resumed by the next claim), succeeded, partial, failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
    sa.Column("reached", UTCDateTime, nullable=False),
    sa.Column("messages_listed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("messages_read", sa.BigInteger, nullable=False, server_default="0"),
    # Gone by the time they were fetched (past SendGrid's retention): counted, not fatal.
    sa.Column("messages_missing", sa.BigInteger, nullable=False, server_default="0"),
    # Detail holding SendGrid's 100-event maximum: older events of it may not be listed.
    sa.Column("messages_truncated", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("events_stored", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rejected", sa.BigInteger, nullable=False, server_default="0"),
    # Listing windows that stayed full however narrow (messages beyond them not listed).
    sa.Column("shortfall", sa.Text),
    # The days this backfill repairs (completeness_repair), reconciled again when it ends.
    sa.Column("repair_days", JSONType),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("heartbeat_at", UTCDateTime),
    sa.Column("worker", sa.Text),
    sa.Column("error", sa.Text),
    sa.Index("ix_backfills_source_started", "source_id", "started_at"),
)

# Where each incremental collection of a source stands (0003): the latest `created` it has
# read, and when it last read its whole list (which is what finds removed objects).
sync_cursors = sa.Table(
    "sync_cursors",
    control_metadata,
    sa.Column(
        "source_id",
        sa.String(36),
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("collection", sa.String(32), primary_key=True),
    sa.Column("position", UTCDateTime),
    sa.Column("full_listing_at", UTCDateTime),
)

webhook_stats = sa.Table(
    "webhook_stats",
    control_metadata,
    sa.Column(
        "source_id",
        sa.String(36),
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("last_event_at", UTCDateTime),
    sa.Column("events_stored", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rejected", sa.BigInteger, nullable=False, server_default="0"),
)


# What the last check of a source's webhook found different from what it should be, one row
# per finding (`disabled`, `url_changed`, `events_off`, `signing_off`, `key_rotated`,
# `deleted`, `silent`) while it lasts: deleted when a check no longer finds it.
webhook_findings = sa.Table(
    "webhook_findings",
    control_metadata,
    sa.Column(
        "source_id",
        sa.String(36),
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("finding", sa.String(32), primary_key=True),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    # Set when `webhook_repair` re-applied the settings after this finding.
    sa.Column("repaired_at", UTCDateTime),
)


def _column_type(field: FieldInfo) -> sa.types.TypeEngine[Any]:
    """Map an event model field's Python type to a column type."""
    python_type = stored_type(field)
    if python_type in (list, dict):
        return JSONType
    mapping: dict[Any, sa.types.TypeEngine[Any]] = {
        str: sa.Text(),
        int: sa.BigInteger(),
        bool: sa.Boolean(),
        datetime: UTCDateTime,
    }
    if python_type not in mapping:
        raise TypeError(f"no column type for {field.annotation!r}")
    return mapping[python_type]


def _event_columns(layout: EventLayout) -> list[sa.Column[Any]]:
    """The columns of `layout.columns`, in that order; the model's fields are typed by their
    annotations and NOT NULL when the model requires them (`event`, `timestamp`)."""
    fields: dict[str, FieldInfo] = layout.model.model_fields
    own: dict[str, sa.Column[Any]] = {
        ID: sa.Column(ID, sa.Text, primary_key=True),
        CUSTOM_ARGS: sa.Column(CUSTOM_ARGS, JSONType, nullable=False),
        RAW: sa.Column(RAW, JSONType, nullable=False),
        RECEIVED: sa.Column(RECEIVED, UTCDateTime, nullable=False),
        ORIGIN: sa.Column(ORIGIN, sa.Text, nullable=False, server_default="webhook"),
    }
    return [
        own[name]
        if name in own
        else sa.Column(name, _column_type(fields[name]), nullable=not fields[name].is_required())
        for name in layout.columns
    ]


# The columns an event table's `timestamp` index carries after it (see SourceTables).
_DAY_INDEX_EXTRA: dict[str, tuple[str, ...]] = {"_open": ("email",), "click": ("email",)}


class SourceTables:
    """The tables of one source's schema. `schema=None` builds unqualified copies (SQLite views)."""

    def __init__(self, schema: str | None) -> None:
        if schema is not None:
            validate_schema_name(schema)
        self.schema = schema
        self.metadata = sa.MetaData(schema=schema)
        self.events: dict[str, sa.Table] = {}
        for table_name, layout in EVENT_LAYOUTS.items():
            table = sa.Table(table_name, self.metadata, *_event_columns(layout))
            # What arrived lately (the console, the webhook summary) counts the webhook's
            # events alone: with `origin` in it, the index answers without the rows.
            sa.Index(f"ix_{table_name}_received_at", table.c.received_at, table.c.origin)
            # Days are counted by ranges of event time (shared.completeness_metrics) from this
            # index alone: opens and clicks carry `email` in it too, so a day's distinct
            # recipients (the trend beside unique_opens and unique_clicks) read no row.
            sa.Index(
                f"ix_{table_name}_timestamp",
                table.c.timestamp,
                *(table.c[name] for name in _DAY_INDEX_EXTRA.get(table_name, ())),
            )
            self.events[table_name] = table
        self.rejected = sa.Table(
            "rejected",
            self.metadata,
            # sha256 of the payload, so a resent bad body is kept once.
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("received_at", UTCDateTime, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("event", sa.Text),
            sa.Column("payload", sa.LargeBinary, nullable=False),
        )
        # The latest rejected events, newest first (the console), without sorting the table.
        sa.Index("ix_rejected_received_at", self.rejected.c.received_at)
        self.objects = object_tables(self.metadata)
        # Each day's stored events against SendGrid's statistics, one row per metric
        # (shared.reconciliation); `missing` is SendGrid's count less the stored one
        # (negative: more stored), `ratio` stored / SendGrid's (NULL when SendGrid counted 0
        # and events are stored).
        self.completeness = sa.Table(
            "completeness",
            self.metadata,
            sa.Column("day", sa.Date, primary_key=True),
            sa.Column("metric", sa.String(32), primary_key=True),
            sa.Column("sendgrid_count", sa.BigInteger, nullable=False),
            sa.Column("stored_count", sa.BigInteger, nullable=False),
            sa.Column("missing", sa.BigInteger, nullable=False),
            sa.Column("ratio", sa.Float),
            sa.Column("checked_at", UTCDateTime, nullable=False),
            # A repair backfill (completeness_repair) keeps the stored count it started from
            # here, so a repaired day shows before and after.
            sa.Column("stored_before_repair", sa.BigInteger),
            sa.Column("repaired_at", UTCDateTime),
        )

    def activity_select(self) -> sa.CompoundSelect[Any]:
        """Every event table with the union of all event columns (NULL where a table lacks one)."""
        columns: dict[str, sa.Column[Any]] = {}
        for table in self.events.values():
            for column in table.columns:
                columns.setdefault(column.name, column)
        selects = [
            sa.select(
                *(
                    table.c[name] if name in table.c else sa.cast(sa.null(), col.type).label(name)
                    for name, col in columns.items()
                )
            )
            for table in self.events.values()
        ]
        return sa.union_all(*selects)


@lru_cache(maxsize=256)
def source_tables(schema: str | None) -> SourceTables:
    return SourceTables(schema)
