"""The object tables of a source's schema: one per collection (shared.collections), named as
the collection, each keyed as SendGrid identifies its objects.

Every object table keeps `raw`, the object exactly as SendGrid sent it, beside its typed
columns (fields SendGrid adds later are not lost), `content_hash` (a re-sync skips unchanged
objects without reading them back), `synced_at` (when the row was last written) and
`deleted_at` (set when a complete listing no longer holds the object; cleared if it returns).
Tables both Marketing Campaigns APIs fill, and `senders`, say in `api` which one a row came
from.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.column_types import JSONType, UTCDateTime

# The metrics of `/v3/stats` (more-apis.md §3.2), one column each in `stats_daily`.
DAILY_METRICS: tuple[str, ...] = (
    "requests",
    "processed",
    "delivered",
    "deferred",
    "bounces",
    "blocks",
    "bounce_drops",
    "spam_report_drops",
    "unsubscribe_drops",
    "invalid_emails",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "spam_reports",
    "unsubscribes",
)
# The metrics of single send and automation statistics (mc_stats `Metrics`).
MARKETING_METRICS: tuple[str, ...] = (
    "requests",
    "delivered",
    "bounces",
    "bounce_drops",
    "spam_report_drops",
    "invalid_emails",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "spam_reports",
    "unsubscribes",
)


def _bookkeeping() -> list[sa.Column[Any]]:
    return [
        sa.Column("raw", JSONType, nullable=False),
        sa.Column("content_hash", sa.BigInteger),
        sa.Column("synced_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime),
    ]


def _api() -> sa.Column[Any]:
    return sa.Column("api", sa.String(16), nullable=False)


def _metrics(names: tuple[str, ...]) -> list[sa.Column[Any]]:
    return [sa.Column(name, sa.BigInteger) for name in names]


def _marketing_tables(metadata: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table(
            "lists",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text),
            sa.Column("contact_count", sa.BigInteger),
            _api(),
            *_bookkeeping(),
        ),
        sa.Table(
            "segments",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text),
            sa.Column("contacts_count", sa.BigInteger),
            sa.Column("parent_list_ids", JSONType),
            sa.Column("query_version", sa.Text),
            sa.Column("query_validation", sa.Text),
            sa.Column("created_at", UTCDateTime),
            sa.Column("updated_at", UTCDateTime),
            sa.Column("sample_updated_at", UTCDateTime),
            sa.Column("next_sample_update", UTCDateTime),
            _api(),
            *_bookkeeping(),
        ),
        sa.Table(
            "recipients",
            metadata,
            sa.Column("contact_id", sa.Text, primary_key=True),
            sa.Column("email", sa.Text),
            sa.Column("first_name", sa.Text),
            sa.Column("last_name", sa.Text),
            sa.Column("alternate_emails", JSONType),
            sa.Column("address_line_1", sa.Text),
            sa.Column("address_line_2", sa.Text),
            sa.Column("city", sa.Text),
            sa.Column("state_province_region", sa.Text),
            sa.Column("postal_code", sa.Text),
            sa.Column("country", sa.Text),
            sa.Column("phone_number", sa.Text),
            sa.Column("whatsapp", sa.Text),
            sa.Column("line", sa.Text),
            sa.Column("facebook", sa.Text),
            sa.Column("unique_name", sa.Text),
            sa.Column("external_id", sa.Text),
            sa.Column("created_at", UTCDateTime),
            sa.Column("updated_at", UTCDateTime),
            sa.Column("custom_fields", JSONType),
            _api(),
            *_bookkeeping(),
        ),
        sa.Table(
            "campaigns",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text),
            sa.Column("status", sa.Text),
            sa.Column("categories", JSONType),
            sa.Column("send_at", UTCDateTime),
            sa.Column("is_abtest", sa.Boolean),
            sa.Column("subject", sa.Text),
            sa.Column("sender_id", sa.BigInteger),
            sa.Column("suppression_group_id", sa.BigInteger),
            sa.Column("send_to", JSONType),
            sa.Column("created_at", UTCDateTime),
            sa.Column("updated_at", UTCDateTime),
            _api(),
            *_bookkeeping(),
        ),
    ]


# Each suppression list's own fields besides `email` and `created` (suppressions OAI).
SUPPRESSION_FIELDS: dict[str, tuple[str, ...]] = {
    "suppression_bounces": ("reason", "status"),
    "suppression_blocks": ("reason", "status"),
    "suppression_spam_reports": ("ip",),
    "suppression_invalid_emails": ("reason",),
    "suppression_global_unsubscribes": (),
}


def _suppression_tables(metadata: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table(
            name,
            metadata,
            sa.Column("email", sa.Text, primary_key=True),
            # When the address was added to the list (SendGrid's `created`, unix seconds).
            sa.Column("created", UTCDateTime),
            *(sa.Column(field, sa.Text) for field in fields),
            *_bookkeeping(),
        )
        for name, fields in SUPPRESSION_FIELDS.items()
    ] + [
        sa.Table(
            "suppression_groups",
            metadata,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("name", sa.Text),
            sa.Column("description", sa.Text),
            sa.Column("is_default", sa.Boolean),
            sa.Column("unsubscribes", sa.BigInteger),
            *_bookkeeping(),
        ),
        sa.Table(
            "suppression_group_members",
            metadata,
            sa.Column("group_id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("email", sa.Text, primary_key=True),
            *_bookkeeping(),
        ),
    ]


def _content_tables(metadata: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table(
            "templates",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text),
            sa.Column("generation", sa.Text),
            sa.Column("updated_at", UTCDateTime),
            *_bookkeeping(),
        ),
        sa.Table(
            "template_versions",
            metadata,
            sa.Column("template_id", sa.Text, primary_key=True),
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text),
            sa.Column("subject", sa.Text),
            sa.Column("active", sa.Boolean),
            sa.Column("editor", sa.Text),
            sa.Column("updated_at", UTCDateTime),
            *_bookkeeping(),
        ),
        sa.Table(
            "senders",
            metadata,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("nickname", sa.Text),
            sa.Column("from_email", sa.Text),
            sa.Column("from_name", sa.Text),
            sa.Column("reply_to_email", sa.Text),
            sa.Column("verified", sa.Boolean),
            sa.Column("locked", sa.Boolean),
            sa.Column("created_at", UTCDateTime),
            sa.Column("updated_at", UTCDateTime),
            # marketing (/v3/marketing/senders) or verified (/v3/verified_senders)
            _api(),
            *_bookkeeping(),
        ),
    ]


def _stats_tables(metadata: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table(
            "stats_daily",
            metadata,
            # A day as SendGrid buckets it (the account's time zone, see more-apis.md §3.3).
            sa.Column("date", sa.Date, primary_key=True),
            *_metrics(DAILY_METRICS),
            *_bookkeeping(),
        ),
        # Keyed by every field that tells rows apart: `id` alone collides once stats are
        # grouped by variation, phase or step.
        sa.Table(
            "singlesend_stats",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("ab_variation", sa.Text, primary_key=True),
            sa.Column("ab_phase", sa.Text, primary_key=True),
            sa.Column("aggregation", sa.Text, primary_key=True),
            *_metrics(MARKETING_METRICS),
            *_bookkeeping(),
        ),
        sa.Table(
            "automation_stats",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("step_id", sa.Text, primary_key=True),
            sa.Column("aggregation", sa.Text, primary_key=True),
            *_metrics(MARKETING_METRICS),
            *_bookkeeping(),
        ),
    ]


def object_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Every object table, by collection name, defined on `metadata`."""
    tables = [
        *_marketing_tables(metadata),
        *_suppression_tables(metadata),
        *_content_tables(metadata),
        *_stats_tables(metadata),
    ]
    return {table.name: table for table in tables}
