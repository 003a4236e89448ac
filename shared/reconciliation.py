"""The daily reconciliation of a source: its stored events of each settled day against
SendGrid's statistics of that day (`GET /v3/stats?aggregated_by=day`).

The days (shared.stats_days) are those of the last RECONCILE_DAYS, cut in the source's
`stats_timezone`, that ended at least RECONCILE_SETTLE ago and during all of which the source
was collecting. One `/v3/stats` call covers them all; each day's stored events are then
counted by the mapping of shared.completeness_metrics, one statement a day in the
warehouse holding the events (`shared.event_counts`: SQL or ClickHouse), and every
figure is written to the source's `completeness` table (shared.completeness_table). A
SendGrid error never escapes: the key lacking `stats.read` (403) or SendGrid unreachable is
recorded on the source as `completeness_error`, the days already stored stay as they were,
and the reconciliation after it tries again. A source with no webhook to watch (neither
managed nor with a verification key) that has received no event is not reconciled either,
as the webhook check does not look for its silence: that is said the same way.

The sync service runs it after every sync run and daily (sync_service.scheduling); the
ingest service on demand (`POST /sources/{id}/completeness`); the CLI with `--check`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import completeness_gauge
from shared.clock import utcnow
from shared.completeness_metrics import METRICS
from shared.completeness_table import write_days
from shared.completeness_verdict import MetricFigures, Status, verdict, worst_ratio
from shared.event_counts import EventCounts
from shared.sendgrid_stats import StatsApiError, fetch_daily_stats
from shared.settings import Settings
from shared.source_rows import Source
from shared.source_secrets import SourceSecrets
from shared.stats_days import DayRange, settled_days
from shared.tables import source_tables, sources

log = logging.getLogger("sendgrid_source.reconciliation")


@dataclass
class ReconcileOutcome:
    """What one reconciliation did: each day's status and verdict, or why it could not run."""

    checked_at: datetime
    days: dict[date, tuple[Status, str]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Reconciliation:
    """Reconciles sources; `counts` counts the stored events (`shared.event_counts`), `now`
    is its clock (tests inject one)."""

    engine: AsyncEngine
    settings: Settings
    http: httpx.AsyncClient
    secrets: SourceSecrets
    counts: EventCounts
    now: Callable[[], datetime] = utcnow

    async def reconcile(self, source: Source) -> ReconcileOutcome:
        outcome = ReconcileOutcome(self.now())
        try:
            zone = ZoneInfo(source.stats_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            outcome.error = (
                f"the stats_timezone {source.stats_timezone!r} is unknown to this machine's "
                "time zone database: set another one"
            )
            return await self._finish(source, outcome)
        tables = source_tables(source.schema_name)
        earliest = await self.counts.earliest_event(source.schema_name)
        if earliest is None and not (source.webhook_managed or source.webhook_verification_key):
            # As for silence: nothing says events are meant to arrive, so nothing is missing.
            outcome.error = (
                "not reconciled: the source has received no event and has no webhook set up to "
                "watch; point SendGrid's Event Webhook at its webhook_url (or configure it)"
            )
            return await self._finish(source, outcome)
        days = settled_days(
            outcome.checked_at,
            zone,
            settle=self.settings.RECONCILE_SETTLE,
            days=self.settings.RECONCILE_DAYS,
            collecting_since=min(source.created_at, earliest or source.created_at),
        )
        if not days:
            return await self._finish(source, outcome)
        try:
            stats = await fetch_daily_stats(
                self.http,
                self.settings.sendgrid_base_url(source.region),
                self.secrets.api_key(source),
                days[0].day,
                days[-1].day,
            )
        except StatsApiError as exc:
            outcome.error = f"not reconciled: {exc}"
            return await self._finish(source, outcome)
        # A day SendGrid's answer lacks counted nothing: stored events of it show as more.
        counted = {entry.day: entry.metrics for entry in stats}
        figures = await self._count(source.schema_name, days, counted)
        async with self.engine.begin() as connection:
            await write_days(connection, tables, figures, outcome.checked_at)
        outcome.days = {day: verdict(metrics) for day, metrics in figures}
        completeness_gauge.show(source.id, worst_ratio(figures[-1][1]))
        return await self._finish(source, outcome)

    async def _count(
        self, schema: str, days: list[DayRange], counted: dict[date, dict[str, int]]
    ) -> list[tuple[date, list[MetricFigures]]]:
        """Each day's figures, SendGrid's beside the stored events'."""
        figures = []
        for day in days:
            stored = await self.counts.day_counts(schema, day)
            sendgrid = counted.get(day.day, {})
            figures.append(
                (
                    day.day,
                    [
                        MetricFigures(m.metric, sendgrid.get(m.metric, 0), stored[m.metric])
                        for m in METRICS
                    ],
                )
            )
        return figures

    async def _finish(self, source: Source, outcome: ReconcileOutcome) -> ReconcileOutcome:
        async with self.engine.begin() as connection:
            await connection.execute(
                sources.update()
                .where(sources.c.id == source.id)
                .values(
                    completeness_checked_at=outcome.checked_at,
                    completeness_error=outcome.error,
                )
            )
        self._log(source, outcome)
        return outcome

    def _log(self, source: Source, outcome: ReconcileOutcome) -> None:
        fields: dict[str, object] = {"source": source.name, "source_id": source.id}
        if outcome.error is not None:
            log.warning(
                "completeness not checked", extra={"fields": fields | {"detail": outcome.error}}
            )
            return
        incomplete = {
            day.isoformat(): line
            for day, (status, line) in outcome.days.items()
            if status == "missing"
        }
        if incomplete:
            log.warning("events missing", extra={"fields": fields | {"days": incomplete}})
        else:
            log.info(
                "completeness checked",
                extra={"fields": fields | {"days": len(outcome.days)}},
            )
