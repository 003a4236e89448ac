"""The schedule follows the sources table: new sources are picked up, removed ones dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from shared.registry import SourceRegistry
from shared.schemas import SourceCreate, SourceUpdate
from shared.source_rows import Source
from sync_service.ledger import list_runs
from sync_service.runner import SyncDependencies
from sync_service.scheduling import SyncScheduler, job_id
from sync_service.service import SyncService
from tests.conftest import api_key
from tests.fake_sendgrid.respx_route import FakeAccount


@pytest.fixture
async def scheduler(sync_service: SyncService) -> AsyncIterator[SyncScheduler]:
    # Started paused: jobs get their next run times, but only the test runs them.
    apscheduler = AsyncIOScheduler(timezone="UTC")
    apscheduler.start(paused=True)
    yield SyncScheduler(sync_service, apscheduler)
    apscheduler.shutdown(wait=False)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_a_new_source_gets_its_initial_sync_within_a_minute(
    account: FakeAccount,
    source: Source,
    scheduler: SyncScheduler,
    sync_deps: SyncDependencies,
) -> None:
    await scheduler.reconcile()

    first = scheduler.next_run_time(source.id)
    assert first is not None
    assert first <= aware(source.created_at) + timedelta(minutes=1)
    job = scheduler.scheduler.get_job(job_id(source.id))
    assert job.trigger.interval == timedelta(hours=3)
    assert job.max_instances == 1
    assert job.coalesce is True

    await scheduler.run_job(source.id)
    await scheduler.run_job(source.id)

    runs = await list_runs(sync_deps.engine, source.id)
    assert [run.trigger for run in runs] == ["scheduled", "initial"]
    assert {run.status for run in runs} == {"succeeded"}


async def test_sources_added_changed_and_removed_are_followed(
    account: FakeAccount,
    source: Source,
    scheduler: SyncScheduler,
    registry: SourceRegistry,
) -> None:
    await scheduler.reconcile()
    second, _ = await registry.create(SourceCreate(name="Marketing Account", api_key=api_key()))

    await scheduler.reconcile()
    assert scheduler.next_run_time(second.id) is not None

    await registry.update(second.id, SourceUpdate(sync_interval=timedelta(hours=1)))
    await registry.remove(source.id, drop_data=False)
    await scheduler.reconcile()

    assert scheduler.scheduler.get_job(job_id(source.id)) is None
    assert scheduler.scheduler.get_job(job_id(second.id)).trigger.interval == timedelta(hours=1)


async def test_after_a_restart_the_next_run_follows_the_last_one(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    scheduler: SyncScheduler,
) -> None:
    outcome = await sync_service.run(source.id, "initial")
    assert outcome is not None
    [run] = await sync_service.runs(source.id)

    await scheduler.reconcile()

    first = scheduler.next_run_time(source.id)
    assert first is not None
    assert first >= run.started_at + timedelta(hours=3) - timedelta(seconds=1)
