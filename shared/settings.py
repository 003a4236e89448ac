"""Configuration, read once from the environment through pydantic-settings.

`get_settings()` is the only reader of the environment. Secrets that are not given
(`ADMIN_TOKEN`, `SECRET_KEY`) are generated on first start and kept under `DATA_DIR`, so a
restart keeps the same admin token and can still decrypt the stored API keys.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clickhouse import SCHEME as CLICKHOUSE_SCHEME
from shared.clickhouse import ClickHouseTarget

Region = Literal["global", "eu"]

SENDGRID_BASE_URLS: dict[str, str] = {
    "global": "https://api.sendgrid.com",
    "eu": "https://api.eu.sendgrid.com",
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> object:
    """Accept `3h`, `90m`, `45s`, `250ms`, `1d` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return timedelta(seconds=value)
        except (OverflowError, ValueError):  # beyond timedelta's range
            raise ValueError(f"{value!r} is not a usable number of seconds") from None
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration such as 3h, 90m, 45s or 250ms")
    number, unit = match.groups()
    try:
        return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])
    except OverflowError:
        raise ValueError(f"{value!r} is longer than any usable duration") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class ConfigurationError(RuntimeError):
    """Start-up refused: the message names the variable and what is wrong with it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, case_sensitive=False, extra="ignore", frozen=True
    )

    DATA_DIR: Path = Path("./data")
    DATABASE_URL: str = "sqlite+aiosqlite:///./data/sendgrid-source.db"
    # Where the event tables live: unset (or DATABASE_URL itself) keeps them beside the
    # control tables; clickhouse://[user[:password]@]host[:port]/database puts them in
    # ClickHouse (a database per source, named as its schema), while sources, runs and stats
    # stay on DATABASE_URL; ?cluster=NAME spreads them over that cluster's shards.
    WAREHOUSE_URL: str | None = None
    ADMIN_TOKEN: SecretStr | None = None
    SECRET_KEY: SecretStr | None = None
    PUBLIC_URL: str = "http://127.0.0.1:8000"
    INGEST_HOST: str = "127.0.0.1"
    INGEST_PORT: int = Field(8000, ge=1, le=65535)
    SYNC_HOST: str = "127.0.0.1"
    SYNC_PORT: int = Field(8001, ge=1, le=65535)
    # Where the ingest service reaches the sync service, for the console's runs and "Sync
    # now" (ingest_service/sync_relay.py); default: SYNC_HOST and SYNC_PORT on this machine.
    SYNC_URL: str | None = None
    SENDGRID_API_URL: str | None = None
    SYNC_INTERVAL: Duration = timedelta(hours=3)
    # Requests one source's sync has in flight at most: its collections are read concurrently
    # within this bound (and within SendGrid's rate-limit headers).
    SYNC_CONCURRENCY: int = Field(4, ge=1, le=32)
    # Suppression lists are read incrementally; a complete read, which is what finds the
    # addresses removed from a list (SendGrid signals no removals), at most this often.
    SUPPRESSION_FULL_SCAN_INTERVAL: Duration = timedelta(hours=24)
    # Daily statistics: the days re-read by every run (SendGrid keeps counting late events),
    # and how far back the first sync reads.
    STATS_REREAD_DAYS: int = Field(7, ge=1, le=400)
    STATS_BACKFILL_DAYS: int = Field(395, ge=1, le=3650)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Webhook receiver (see ingest_service): body limit, replay window, group commit.
    WEBHOOK_MAX_BODY_BYTES: int = Field(8 * 1024 * 1024, ge=1024)
    WEBHOOK_MAX_EVENTS: int = Field(50_000, ge=1)
    WEBHOOK_TIMESTAMP_TOLERANCE: Duration | None = None
    # How long configuring a webhook waits for SendGrid's test batch to reach the receiver.
    WEBHOOK_TEST_TIMEOUT: Duration = timedelta(seconds=60)
    INGEST_BATCH_MAX_EVENTS: int = Field(5000, ge=1)
    INGEST_BATCH_LINGER: Duration = timedelta(milliseconds=5)
    # Lanes of group commits (PostgreSQL; SQLite always 1). Each event table belongs to one
    # lane, so lanes overlap their database round trips without racing on an id.
    INGEST_WRITERS: int = Field(2, ge=1, le=12)
    # Processes that parse and validate webhook bodies beside the service, so that work runs
    # on another core; 0 parses in a thread of the service (best on a single core).
    INGEST_PARSERS: int = Field(1, ge=0, le=16)
    # A source's rows are inserted with no look-up while fewer than this share of its recent
    # table writes met an id already stored (ingest_service/write_paths.py); above it, ids
    # are looked up first. 0 always looks up first.
    INGEST_INSERT_FIRST_BELOW: float = Field(0.25, ge=0, le=1)
    DATABASE_RETRY_AFTER: int = Field(30, ge=1)
    # Load shedding: past this many webhook requests being read, parsed or waiting for their
    # commit, new ones get 503 at once (SendGrid resends) instead of queueing into ever-longer
    # answers and memory.
    INGEST_MAX_IN_FLIGHT: int = Field(16, ge=1)
    INGEST_OVERLOAD_RETRY_AFTER: int = Field(5, ge=1)
    # Watching the webhook: a source whose webhook delivered nothing for this long while
    # SendGrid's stats show mail processed is flagged `silent` (shared/webhook_silence.py).
    WEBHOOK_SILENCE_ALERT: Duration = timedelta(hours=6)
    # Daily reconciliation (shared/reconciliation.py): a day is compared with SendGrid's
    # statistics once it ended this long ago (SendGrid retries an event for 24 h), over the
    # last RECONCILE_DAYS days (SendGrid keeps 30 days of event history).
    RECONCILE_SETTLE: Duration = timedelta(hours=48)
    RECONCILE_DAYS: int = Field(30, ge=1, le=366)

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split('://', 1)[0]!r})"
            )
        return value

    @field_validator("WAREHOUSE_URL")
    @classmethod
    def _known_warehouse(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == info.data.get("DATABASE_URL"):
            return None
        if not value.startswith(CLICKHOUSE_SCHEME):
            raise ValueError(
                "must be clickhouse://host:port/database[?cluster=NAME], or unset to keep the "
                "events on DATABASE_URL (another SQL database for the events alone is not "
                "supported)"
            )
        try:
            ClickHouseTarget.from_url(value)
        except ValueError as exc:
            raise ValueError(f"the ClickHouse URL {exc}") from None
        return value

    @field_validator("ADMIN_TOKEN", "SECRET_KEY")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (leave it unset to generate one)")
        return value

    @field_validator("PUBLIC_URL", "SENDGRID_API_URL", "SYNC_URL")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("WEBHOOK_SILENCE_ALERT")
    @classmethod
    def _positive_alert(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0")
        return value

    @field_validator("RECONCILE_SETTLE")
    @classmethod
    def _sane_settle(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value <= timedelta(days=30):
            raise ValueError("must be between 0 and 30d")
        return value

    @field_validator("SUPPRESSION_FULL_SCAN_INTERVAL")
    @classmethod
    def _positive_scan_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative (0: read every list completely every run)")
        return value

    @field_validator("SYNC_INTERVAL")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return value

    @field_validator("WEBHOOK_TEST_TIMEOUT")
    @classmethod
    def _sane_test_timeout(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=10):
            raise ValueError("must be more than 0 and at most 10m")
        return value

    @property
    def clickhouse_url(self) -> str | None:
        """WAREHOUSE_URL when the event tables live in ClickHouse."""
        return self.WAREHOUSE_URL

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    @property
    def admin_token(self) -> str:
        assert self.ADMIN_TOKEN is not None, "get_settings() fills ADMIN_TOKEN"
        return self.ADMIN_TOKEN.get_secret_value()

    @property
    def secret_key(self) -> str:
        assert self.SECRET_KEY is not None, "get_settings() fills SECRET_KEY"
        return self.SECRET_KEY.get_secret_value()

    def sendgrid_base_url(self, region: str) -> str:
        """SENDGRID_API_URL overrides the region's host (tests, proxies)."""
        return self.SENDGRID_API_URL or SENDGRID_BASE_URLS[region]

    @property
    def sync_service_url(self) -> str:
        if self.SYNC_URL:
            return self.SYNC_URL
        # A service listening on every address is reached on the loopback one.
        host = "127.0.0.1" if self.SYNC_HOST in ("", "0.0.0.0", "::") else self.SYNC_HOST  # noqa: S104
        return (
            f"http://[{host}]:{self.SYNC_PORT}"
            if ":" in host
            else f"http://{host}:{self.SYNC_PORT}"
        )

    def webhook_url(self, source_id: str, token: str) -> str:
        return f"{self.PUBLIC_URL}/webhooks/{source_id}/{token}"


def _read_or_create_secret(path: Path, make: str) -> tuple[str, bool]:
    # Processes starting together must share one secret: write a private temp file, then
    # link it into place; whoever loses the race reads the winner's.
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(make + "\n")
        try:
            os.link(temp, path)
            return make, True
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    return path.read_text().strip(), False


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; fill missing secrets from (or into) DATA_DIR."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
    updates: dict[str, object] = {}
    if settings.ADMIN_TOKEN is None:
        token, _ = _read_or_create_secret(
            settings.DATA_DIR / "admin_token", secrets.token_urlsafe(32)
        )
        updates["ADMIN_TOKEN"] = SecretStr(token)
    if settings.SECRET_KEY is None:
        key, _ = _read_or_create_secret(settings.DATA_DIR / "secret_key", secrets.token_urlsafe(32))
        updates["SECRET_KEY"] = SecretStr(key)
    return settings.model_copy(update=updates) if updates else settings


@lru_cache
def get_settings() -> Settings:
    return load_settings()
