"""Request and response bodies of the REST API, shared by both services."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.collections import NAMES, check_names
from shared.settings import Duration, Region
from shared.signature import InvalidVerificationKey, load_verification_key
from shared.stats_days import DEFAULT_TIMEZONE, check_timezone
from shared.webhook_management import WebhookManagement


def _clean_api_key(value: str) -> str:
    # Keys pasted from a terminal or a password manager often carry stray whitespace.
    key = value.strip()
    if not key:
        raise ValueError("api_key is empty")
    if any(ch.isspace() for ch in key):
        raise ValueError("api_key holds whitespace inside it; paste the key exactly as shown")
    if not key.startswith("SG."):
        raise ValueError("api_key does not look like a SendGrid API key (they start with 'SG.')")
    return key


def _check_verification_key(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        load_verification_key(value)
    except InvalidVerificationKey as exc:
        raise ValueError(f"webhook_verification_key: {exc}") from None
    return "".join(value.split()) if not value.strip().startswith("-----") else value.strip()


def _check_collections(value: list[str] | None) -> list[str] | None:
    return None if value is None else check_names(value)


_COLLECTIONS_HELP = (
    "The collections to sync (default: all): " + ", ".join(NAMES) + ". Those left out are "
    "recorded as skipped in each run, and their tables and rows stay as they are."
)

_TIMEZONE_HELP = (
    "The IANA time zone of the SendGrid account's settings (e.g. America/New_York), in which "
    "SendGrid counts its daily statistics; the daily reconciliation cuts days in it."
)


def _check_timezone(value: str | None) -> str | None:
    return None if value is None else check_timezone(value)


MIN_SYNC_INTERVAL = timedelta(minutes=1)
MAX_SYNC_INTERVAL = timedelta(days=365)


def _check_sync_interval(value: timedelta | None) -> timedelta | None:
    if value is not None and not MIN_SYNC_INTERVAL <= value <= MAX_SYNC_INTERVAL:
        raise ValueError("sync_interval must be between 1m and 365d")
    return value


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["SendGrid"])
    api_key: str = Field(description="A SendGrid API key with read access; never returned.")
    webhook_verification_key: str | None = Field(
        None, description="The Signed Event Webhook's verification key (base64 DER)."
    )
    region: Region = "global"
    sync_interval: Duration | None = Field(None, description="e.g. 3h; default SYNC_INTERVAL")
    collections: list[str] | None = Field(None, description=_COLLECTIONS_HELP)
    stats_timezone: str = Field(
        DEFAULT_TIMEZONE, max_length=64, description=_TIMEZONE_HELP, examples=["Europe/Paris"]
    )
    configure_webhook: bool = Field(
        False,
        description="Configure the account's Event Webhook with the source's API key: adopt "
        "the webhook already at this source's URL or create one, sign it, and test it.",
    )
    adopt_webhook_id: str | None = Field(
        None,
        max_length=64,
        description="With configure_webhook: take over this existing webhook (repointed at "
        "this source's URL), e.g. when the plan's webhook limit is reached.",
    )

    _api_key = field_validator("api_key")(_clean_api_key)
    _verification_key = field_validator("webhook_verification_key")(_check_verification_key)
    _sync_interval = field_validator("sync_interval")(_check_sync_interval)
    _collections = field_validator("collections")(_check_collections)
    _stats_timezone = field_validator("stats_timezone")(_check_timezone)


class SourceUpdate(BaseModel):
    """Only the fields present are changed; `webhook_verification_key: null` turns signing off."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    api_key: str | None = None
    webhook_verification_key: str | None = None
    region: Region | None = None
    sync_interval: Duration | None = None
    webhook_repair: bool | None = Field(
        None, description="Repair drift of the managed webhook's settings when checked."
    )
    collections: list[str] | None = Field(
        None, description=_COLLECTIONS_HELP + " null: all of them again."
    )
    stats_timezone: str | None = Field(None, max_length=64, description=_TIMEZONE_HELP)

    _api_key = field_validator("api_key")(
        lambda value: None if value is None else _clean_api_key(value)
    )
    _verification_key = field_validator("webhook_verification_key")(_check_verification_key)
    _sync_interval = field_validator("sync_interval")(_check_sync_interval)
    _collections = field_validator("collections")(_check_collections)
    _stats_timezone = field_validator("stats_timezone")(_check_timezone)


class WebhookFinding(BaseModel):
    """Something wrong with a source's webhook, as the last check found it (see
    shared/webhook_drift.py for every finding and what it means)."""

    finding: str
    detail: str
    first_seen_at: datetime
    last_seen_at: datetime
    repaired_at: datetime | None = None


class WebhookCheckResult(BaseModel):
    """`GET /sources/{id}/webhook/check`: what a check done now found."""

    source_id: str
    checked_at: datetime
    findings: list[WebhookFinding]


class WebhookSummary(BaseModel):
    last_event_at: datetime | None
    events_last_24h: dict[str, int]
    events_stored: int
    duplicates_absorbed: int
    rejected: int
    drift: list[WebhookFinding] = Field(
        default_factory=list, description="what the last webhook check found wrong"
    )


class SourcePublic(BaseModel):
    id: str
    name: str
    schema_name: str = Field(serialization_alias="schema")
    region: str
    webhook_url: str
    webhook_signed: bool
    api_key_fingerprint: str = Field(description="sha256 prefix of the key, to tell keys apart")
    scopes: list[str]
    sync_interval_seconds: int
    collections: list[str] = Field(description="the collections this source syncs")
    stats_timezone: str = Field(description="the time zone SendGrid's daily stats are cut in")
    created_at: datetime
    updated_at: datetime
    warnings: list[str] = Field(default_factory=list)
    webhook: WebhookSummary | None = None
    webhook_management: WebhookManagement | None = None


class SourceList(BaseModel):
    sources: list[SourcePublic]


class CollectionRun(BaseModel):
    """One collection of a sync run, in the ledger's words (`sync_run_collections`)."""

    collection: str
    api: str | None
    status: str
    rows_upserted: int
    rows_deleted: int
    message: str | None
    started_at: datetime | None
    finished_at: datetime | None


class SyncRun(BaseModel):
    """One sync run (`sync_runs`) with what happened to every collection."""

    id: str
    source_id: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    collections: list[CollectionRun]


class SyncStarted(BaseModel):
    run_id: str
    status: str = "running"


class SyncRunList(BaseModel):
    runs: list[SyncRun]


class EventSeries(BaseModel):
    event: str = Field(description="the event type, as SendGrid names it")
    table: str = Field(description="the event table that holds it")
    counts: list[int] = Field(description="events received in each hour of `hours`")
    total: int


class HourlyEvents(BaseModel):
    """`GET /sources/{id}/events/hourly`: events stored per hour and event type."""

    source_id: str
    start: datetime = Field(description="the first hour's start (UTC, on the hour)")
    end: datetime = Field(description="the end of the last hour, the current one")
    hours: list[datetime] = Field(description="each hour's start, oldest first")
    series: list[EventSeries] = Field(description="one per event type, every type listed")


class RejectedEvent(BaseModel):
    id: str = Field(description="sha256 of the payload: a resent bad body is kept once")
    received_at: datetime
    reason: str
    event: str | None = Field(description="the event type the payload claimed, if any")
    payload_preview: str = Field(description="the payload's first bytes, as UTF-8")
    payload_bytes: int
    truncated: bool = Field(description="whether the preview is shorter than the payload")


class RejectedEvents(BaseModel):
    """`GET /sources/{id}/rejected`: the latest rejected events, newest first."""

    source_id: str
    events: list[RejectedEvent]


HealthLevel = Literal["green", "amber", "red"]


class HealthReason(BaseModel):
    level: HealthLevel
    text: str


class SourceHealth(BaseModel):
    """Whether a source's data is flowing (shared/source_health.py says how it is judged)."""

    status: HealthLevel = Field(description="the worst level among the reasons")
    reasons: list[HealthReason] = Field(description="worst first")


class SourceOverview(BaseModel):
    """A source with its health, webhook summary and latest runs: a row of the console."""

    source: SourcePublic
    health: SourceHealth
    last_run: SyncRun | None = Field(description="the newest run, maybe still running")
    last_finished_run: SyncRun | None
    runs_error: str | None = Field(
        None, description="why the runs could not be read from the sync service"
    )


class Overview(BaseModel):
    """`GET /overview`: every active source, as the console's first page shows them."""

    checked_at: datetime
    sources: list[SourceOverview]


class WebhookConfigure(BaseModel):
    """`POST /sources/{id}/webhook`: configure (or re-configure) the source's webhook."""

    model_config = ConfigDict(extra="forbid")

    adopt_webhook_id: str | None = Field(
        None, max_length=64, description="Take over this existing webhook (repointed here)."
    )


class CompletenessMetric(BaseModel):
    """One metric of one day: SendGrid's count against the stored events'."""

    metric: str = Field(examples=["delivered"])
    sendgrid_count: int
    stored_count: int
    missing: int = Field(description="sendgrid_count - stored_count (negative: more stored)")
    ratio: float | None = Field(
        description="stored_count / sendgrid_count; null when SendGrid counted none but "
        "events are stored"
    )
    trend_only: bool = Field(
        description="compared as a trend, never alarmed on (deferred, unique_opens, "
        "unique_clicks: see the README)"
    )


class CompletenessDay(BaseModel):
    day: date = Field(description="a day in the source's stats_timezone")
    status: Literal["complete", "missing", "more_stored"]
    verdict: str = Field(
        examples=[
            "complete",
            "12 events missing in delivered",
            "more stored than SendGrid counts (opens +3)",
        ]
    )
    checked_at: datetime
    metrics: list[CompletenessMetric]


class CompletenessReport(BaseModel):
    """`GET /sources/{id}/completeness`: the last days reconciled, newest first."""

    source_id: str
    stats_timezone: str
    checked_at: datetime | None = Field(description="when the last reconciliation ran")
    error: str | None = Field(
        description="why the last reconciliation could not compare (e.g. the key lacks "
        "stats.read); the days shown are from earlier ones"
    )
    days: list[CompletenessDay]


class SourceRemoved(BaseModel):
    """`DELETE /sources/{id}` with remove_webhook: what was done."""

    id: str
    name: str
    data_dropped: bool
    webhook: str = Field(description="what happened to the source's webhook in SendGrid")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None
