"""The reconciliation after every sync run and the hourly job reconciling sources a day old:
recorded on the source, days stored, and a failing reconciliation never failing the sync."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from shared.completeness_metrics import METRICS
from shared.reconciliation import ReconcileOutcome
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.source_rows import Source
from shared.tables import source_tables, sources
from sync_service.runner import SyncDependencies
from sync_service.scheduling import COMPLETENESS_JOB_SECONDS, SyncScheduler
from sync_service.service import SyncService
from tests.conftest import api_key
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.reconciliation_helpers import DAY_COUNTS, START, Clock, day_traffic, unique
from tests.webhook_helpers import Signer, body_of

DAY = date(2026, 3, 1)
NOW = datetime(2026, 3, 4, 12, tzinfo=UTC)


async def set_columns(deps: SyncDependencies, source_id: str, **values: object) -> None:
    async with deps.engine.begin() as connection:
        await connection.execute(sources.update().where(sources.c.id == source_id).values(values))


async def days_stored(deps: SyncDependencies, source: Source) -> dict[date, int]:
    """Day -> rows of the `completeness` table."""
    table = source_tables(source.schema_name).completeness
    async with deps.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(table.c.day, sa.func.count()).group_by(table.c.day)
        )
        return {day: count for day, count in rows}


@pytest.fixture
def clock(sync_deps: SyncDependencies) -> Clock:
    clock = Clock(NOW)
    sync_deps.reconciliation.now = clock
    return clock


async def test_every_sync_run_reconciles_the_settled_days(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    ingest: httpx.AsyncClient,
    clock: Clock,
) -> None:
    await set_columns(sync_deps, source.id, created_at=START)
    path = sync_deps.settings.webhook_url(source.id, sync_deps.secrets.webhook_token(source))
    stored = await ingest.post(
        path.removeprefix("http://ingest.test"),
        content=body_of(day_traffic(datetime(2026, 3, 1, tzinfo=UTC), DAY_COUNTS)),
    )
    assert stored.status_code == 200, stored.text
    counted = DAY_COUNTS | unique(DAY_COUNTS)
    counted["delivered"] += 4
    account.daily_stats[DAY.isoformat()] = counted

    outcome = await sync_service.run(source.id, "manual")

    assert outcome is not None
    assert (outcome.status, outcome.error) == ("succeeded", None)
    after = await sync_deps.sources.get(source.id)
    assert (after.completeness_checked_at, after.completeness_error) == (NOW, None)
    days = await days_stored(sync_deps, source)
    assert sorted(days) == [START.date() + timedelta(days=n) for n in range(10)]
    assert set(days.values()) == {len(METRICS)}  # every metric compared, each day
    table = source_tables(source.schema_name).completeness
    async with sync_deps.engine.connect() as connection:
        missing = await connection.scalar(
            sa.select(table.c.missing).where(table.c.day == DAY, table.c.metric == "delivered")
        )
    assert missing == 4


async def test_a_key_without_stats_read_is_recorded_and_the_run_goes_on(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    clock: Clock,
) -> None:
    # A source whose webhook was configured by hand, signed: one to watch.
    await set_columns(
        sync_deps, source.id, created_at=START, webhook_verification_key=Signer().verification_key
    )
    account.forbidden.add("/v3/stats")

    outcome = await sync_service.run(source.id, "manual")

    assert outcome is not None
    # Only the daily statistics collection is refused; the run is not failed.
    assert (outcome.status, outcome.error) == ("partial", None)
    after = await sync_deps.sources.get(source.id)
    assert after.completeness_checked_at == NOW
    assert after.completeness_error is not None
    assert "stats.read" in after.completeness_error
    assert await days_stored(sync_deps, source) == {}


async def test_a_crashing_reconciliation_is_logged_and_the_sync_succeeds(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def crash(_: Source) -> None:
        raise RuntimeError("boom")

    sync_deps.reconciliation.reconcile = crash  # type: ignore[assignment, method-assign]

    with caplog.at_level(logging.ERROR, logger="sendgrid_source.sync"):
        outcome = await sync_service.run(source.id, "manual")

    assert outcome is not None
    assert (outcome.status, outcome.error) == ("succeeded", None)
    assert [r.getMessage() for r in caplog.records] == ["completeness check failed"]


@pytest.fixture
async def scheduler(sync_service: SyncService) -> AsyncIterator[SyncScheduler]:
    apscheduler = AsyncIOScheduler(timezone="UTC")
    apscheduler.start(paused=True)
    yield SyncScheduler(sync_service, apscheduler)
    apscheduler.shutdown(wait=False)


async def test_the_hourly_job_reconciles_the_sources_last_reconciled_a_day_ago(
    account: FakeAccount,
    source: Source,
    registry: SourceRegistry,
    scheduler: SyncScheduler,
    sync_deps: SyncDependencies,
    clock: Clock,
) -> None:
    fresh, _ = await registry.create(SourceCreate(name="Fresh", api_key=api_key()))
    stale, _ = await registry.create(SourceCreate(name="Stale", api_key=api_key()))
    await set_columns(sync_deps, fresh.id, completeness_checked_at=NOW - timedelta(hours=23))
    await set_columns(sync_deps, stale.id, completeness_checked_at=NOW - timedelta(hours=25))
    # `source` was never reconciled.

    await scheduler.check_completeness()

    checked = {s.name: s.completeness_checked_at for s in await sync_deps.sources.list_sources()}
    assert checked == {"SendGrid": NOW, "Fresh": NOW - timedelta(hours=23), "Stale": NOW}


async def test_a_failing_source_does_not_stop_the_job_for_the_others(
    account: FakeAccount,
    source: Source,
    registry: SourceRegistry,
    scheduler: SyncScheduler,
    sync_deps: SyncDependencies,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other, _ = await registry.create(SourceCreate(name="Other", api_key=api_key()))
    reconcile = sync_deps.reconciliation.reconcile

    async def crash_for_the_first(checked: Source) -> ReconcileOutcome:
        if checked.id == source.id:
            raise RuntimeError("boom")
        return await reconcile(checked)

    sync_deps.reconciliation.reconcile = crash_for_the_first  # type: ignore[assignment, method-assign]

    with caplog.at_level(logging.ERROR, logger="sendgrid_source.sync"):
        await scheduler.check_completeness()

    assert (await sync_deps.sources.get(other.id)).completeness_checked_at == NOW
    assert [r.getMessage() for r in caplog.records] == ["scheduled completeness check failed"]


async def test_the_service_schedules_the_completeness_job_hourly(
    sync_service: SyncService,
) -> None:
    scheduler = SyncScheduler(sync_service, AsyncIOScheduler(timezone="UTC"))
    scheduler.start()
    scheduler.scheduler.pause()  # no job runs: only the schedule is looked at
    try:
        job = scheduler.scheduler.get_job("completeness")
        assert job.trigger.interval == timedelta(seconds=COMPLETENESS_JOB_SECONDS)
        assert COMPLETENESS_JOB_SECONDS == 3600
        assert (job.max_instances, job.coalesce) == (1, True)
    finally:
        scheduler.shutdown()
