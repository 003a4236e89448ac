"""Backfill benchmark: a 30-day backfill from Email Logs served locally (the fake SendGrid,
tests/fake_sendgrid/server.py, as its own process, answering as the OpenAPI file says),
against reading the same messages and events with no storing, side by side in one run.

The read alone is the ceiling the answers set here (listings, then one detail request per
message, at most SYNC_CONCURRENCY in flight, through the same client); the backfill adds
mapping each event to the webhook's shape and storing it through the webhook's validation and
writer, one transaction a window. What the real API allows is not known (its rate limit is
undocumented), so the figure that carries over is the ratio: what storing costs on top of
reading.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.sync import FakeSendGridProcess, _register, _settings
from shared.clock import utcnow
from shared.db import create_engine
from shared.migrate import upgrade_control_schema
from shared.tables import source_tables
from sync_service.app import HTTP_TIMEOUT
from sync_service.backfill_service import BackfillService
from sync_service.email_logs import read_email_logs
from sync_service.runner import SyncDependencies

DAYS = 30


@dataclass
class BackfillFigures:
    messages: int
    events_read: int
    read_seconds: float
    backfill_seconds: float
    events_stored: int
    rows_in_tables: int
    windows_status: str

    @property
    def read_per_s(self) -> float:
        return self.events_read / self.read_seconds

    @property
    def backfill_per_s(self) -> float:
        return self.events_stored / self.backfill_seconds


async def run(database_url: str, workdir: Path, *, messages: int) -> BackfillFigures:
    await asyncio.to_thread(upgrade_control_schema, database_url)
    fake = FakeSendGridProcess(100, workdir / "fake-sendgrid.log", ("--email-logs", str(messages)))
    engine = create_engine(database_url)
    try:
        await fake.wait_ready()
        settings = _settings(database_url, workdir, fake.url)
        name = f"bench backfill {uuid.uuid4().hex[:8]}"
        schema = await _register(settings, name)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            deps = SyncDependencies(engine, http, settings)
            source = await deps.sources.find(name)
            until = utcnow()
            since = until - timedelta(days=DAYS)
            started = time.perf_counter()
            events_read = 0
            async for window in read_email_logs(deps.client_for(source), since, until):
                events_read += sum(len(message.events) for message in window.messages)
            read_seconds = time.perf_counter() - started

            service = BackfillService(deps)
            claim = await service.claim(source, "manual", since, until)
            if claim is None:
                raise RuntimeError("the benchmark's source already has a backfill running")
            started = time.perf_counter()
            record = await service.run(source, claim)
            backfill_seconds = time.perf_counter() - started
        rows = 0
        async with engine.connect() as connection:
            for table in source_tables(schema).events.values():
                rows += int(
                    await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0
                )
    finally:
        await engine.dispose()
        fake.stop()
    return BackfillFigures(
        messages=messages,
        events_read=events_read,
        read_seconds=read_seconds,
        backfill_seconds=backfill_seconds,
        events_stored=record.events_stored,
        rows_in_tables=rows,
        windows_status=record.status,
    )


def summary(figures: BackfillFigures) -> list[tuple[str, str, str]]:
    f = figures
    return [
        (
            f"messages in Email Logs over {DAYS} days",
            f"{f.messages:,}",
            f"{f.events_read:,} events",
        ),
        (
            "reading them alone: listings and details, events/s (baseline)",
            f"{f.read_per_s:,.0f}",
            "1.00x",
        ),
        (
            "backfill: read, mapped, validated and stored, events/s",
            f"{f.backfill_per_s:,.0f}",
            f"{f.backfill_per_s / f.read_per_s:.2f}x the read alone",
        ),
        (
            "events stored / rows in the event tables / events read",
            f"{f.events_stored:,} / {f.rows_in_tables:,} / {f.events_read:,}",
            "equal" if f.events_stored == f.rows_in_tables == f.events_read else "DIFFERENT",
        ),
        ("backfill status", f.windows_status, "succeeded expected"),
    ]
