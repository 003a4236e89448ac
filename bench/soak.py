"""Soak: sustained webhook load at 80% of the measured maximum for minutes, with syncs
running against a fake SendGrid at the same time. Reports whether RSS and latency stay flat
(first third of the soak against the last third) and whether every event was stored."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.events import frame, make_batches
from bench.ingest import (
    ADMIN_TOKEN,
    BATCH_SIZE,
    SECRET_KEY,
    count_events,
    free_port,
    send_on_schedule,
    tree_memory_mb,
    wait_healthy,
)
from bench.sync import FakeSendGridProcess
from shared.db import create_engine
from shared.migrate import upgrade_control_schema
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import load_settings
from tests.webhook_helpers import Signer


@dataclass
class SoakFigures:
    seconds: float
    target_events_per_s: float
    achieved_events_per_s: float
    p50_first_ms: float
    p99_first_ms: float
    p50_last_ms: float
    p99_last_ms: float
    ingest_rss_first_mb: float
    ingest_rss_last_mb: float
    sync_rss_first_mb: float
    sync_rss_last_mb: float
    syncs_completed: int
    sync_statuses: dict[str, int]
    rows_stored: int
    unique_sent: int
    non_2xx: int


def _rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants (the ingest service's parser process)."""
    return tree_memory_mb(pid, "VmRSS")


# Requests the load generator keeps in flight at most, like SendGrid's bounded senders. More
# than the service admits (INGEST_MAX_IN_FLIGHT), so load shedding is still exercised; when
# the service falls behind, the schedule slips and the achieved rate says so. Unbounded, the
# HTTP client's pool spends its time sorting thousands of queued requests (quadratic work).
MAX_IN_FLIGHT = 48


def _signed_bodies(
    batches_needed: int, signer: Signer
) -> tuple[list[tuple[bytes, dict[str, str]]], int]:
    """Framed, signed bodies made in chunks: only the bytes are kept, not millions of dicts."""
    bodies: list[tuple[bytes, dict[str, str]]] = []
    unique = 0
    for chunk, start in enumerate(range(0, batches_needed, 200)):
        batches, chunk_unique = make_batches(
            min(200, batches_needed - start), BATCH_SIZE, seed=3 + chunk
        )
        bodies += [(body, signer.headers(body)) for body in map(frame, batches)]
        unique += chunk_unique
    return bodies, unique


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


async def run(
    database_url: str, workdir: Path, *, events_per_s: float, seconds: int, contacts: int
) -> SoakFigures:
    fake = FakeSendGridProcess(contacts, workdir / "fake.log")
    await fake.wait_ready()
    ingest_port, sync_port = free_port(), free_port()
    env = os.environ | {
        "DATABASE_URL": database_url, "DATA_DIR": str(workdir), "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": SECRET_KEY, "INGEST_PORT": str(ingest_port), "SYNC_PORT": str(sync_port),
        "SENDGRID_API_URL": fake.url, "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    settings = load_settings(
        DATABASE_URL=database_url, DATA_DIR=workdir, ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=SECRET_KEY, SENDGRID_API_URL=fake.url,
    )  # fmt: skip
    await asyncio.to_thread(upgrade_control_schema, database_url)
    signer = Signer()
    engine = create_engine(database_url)
    async with httpx.AsyncClient() as http:
        registry = SourceRegistry(engine, settings, http)
        request = SourceCreate(
            name="Soak", api_key="SG.soak.key", webhook_verification_key=signer.verification_key
        )
        source, _ = await registry.create(request)
        url = settings.webhook_url(source.id, registry.secrets.webhook_token(source))
        path = "/" + url.split("/", 3)[3]
    await engine.dispose()
    log = (workdir / "services.log").open("w")
    services = {
        name: subprocess.Popen(
            [sys.executable, "-m", "sendgrid_source", name], env=env, stdout=log, stderr=log
        )
        for name in ("ingest", "sync")
    }
    batches_needed = max(6, int(events_per_s * seconds / BATCH_SIZE))
    bodies, unique = _signed_bodies(batches_needed, signer)
    interval = BATCH_SIZE / events_per_s
    latencies: list[tuple[float, float]] = []
    rss: list[tuple[float, float, float]] = []
    statuses: dict[str, int] = {}
    non_2xx = 0
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        ingest_url, sync_url = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{sync_port}"
        async with (
            httpx.AsyncClient(base_url=ingest_url, timeout=120) as ingest,
            httpx.AsyncClient(base_url=sync_url, timeout=30, headers=admin) as sync,
        ):
            for client in (ingest, sync):
                await wait_healthy(client)
            started = time.perf_counter()

            in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

            async def send(body: bytes, headers: dict[str, str]) -> None:
                async with in_flight:
                    await send_until_stored(body, headers)

            async def send_until_stored(body: bytes, headers: dict[str, str]) -> None:
                nonlocal non_2xx
                while True:  # resend until 2xx, as SendGrid does
                    sent = time.perf_counter()
                    try:
                        response = await ingest.post(path, content=body, headers=headers)
                    except httpx.TransportError:
                        # e.g. a keep-alive connection the server closed as it was reused
                        status = 0
                    else:
                        status = response.status_code
                    latencies.append((sent - started, time.perf_counter() - sent))
                    if status == 200:
                        return
                    non_2xx += 1
                    await asyncio.sleep(1)

            async def keep_syncing() -> None:
                # A sync is always running: start the next as soon as the last has ended.
                while True:
                    await sync.post(f"/sources/{source.id}/syncs")
                    await asyncio.sleep(2)

            async def sample_rss() -> None:
                while True:
                    now = time.perf_counter() - started
                    ingest_rss = _rss_mb(services["ingest"].pid)
                    rss.append((now, ingest_rss, _rss_mb(services["sync"].pid)))
                    await asyncio.sleep(1)

            background = [asyncio.create_task(keep_syncing()), asyncio.create_task(sample_rss())]
            await send_on_schedule(bodies, interval, started, send)
            elapsed = time.perf_counter() - started
            for task in background:
                task.cancel()
            runs = (await sync.get(f"/sources/{source.id}/syncs")).json()["runs"]
            for run_ in runs:
                statuses[run_["status"]] = statuses.get(run_["status"], 0) + 1
    finally:
        for process in services.values():
            process.terminate()
        for process in services.values():
            process.wait(30)
        log.close()
        fake.stop()
    third = elapsed / 3
    first = [lat for at, lat in latencies if at < third]
    last = [lat for at, lat in latencies if at >= 2 * third]
    rss_first = [r for r in rss if r[0] < third]
    rss_last = [r for r in rss if r[0] >= 2 * third]
    return SoakFigures(
        seconds=elapsed,
        target_events_per_s=events_per_s,
        achieved_events_per_s=len(bodies) * BATCH_SIZE / elapsed,
        p50_first_ms=_pct(first, 0.5),
        p99_first_ms=_pct(first, 0.99),
        p50_last_ms=_pct(last, 0.5),
        p99_last_ms=_pct(last, 0.99),
        ingest_rss_first_mb=_mean([r[1] for r in rss_first]),
        ingest_rss_last_mb=_mean([r[1] for r in rss_last]),
        sync_rss_first_mb=_mean([r[2] for r in rss_first]),
        sync_rss_last_mb=_mean([r[2] for r in rss_last]),
        syncs_completed=sum(v for k, v in statuses.items() if k != "running"),
        sync_statuses=statuses,
        rows_stored=await count_events(settings, source.schema_name),
        unique_sent=unique,
        non_2xx=non_2xx,
    )


def summary(f: SoakFigures) -> list[tuple[str, str, str]]:
    def growth(first: float, last: float) -> str:
        return f"{(last - first) / first:+.0%} from first to last third"

    return [
        (
            f"soak: {f.seconds:.0f} s of signed webhook load with syncs running, events/s",
            f"{f.achieved_events_per_s:,.0f}",
            f"target {f.target_events_per_s:,.0f} (80% of the measured maximum)",
        ),
        (
            "p50 / p99 answer, first third → last third, ms",
            f"{f.p50_first_ms:.0f} / {f.p99_first_ms:.0f} → "
            f"{f.p50_last_ms:.0f} / {f.p99_last_ms:.0f}",
            "flat" if f.p99_last_ms <= 1.5 * f.p99_first_ms else "GROWING",
        ),
        (
            "ingest RSS, first third → last third, MB",
            f"{f.ingest_rss_first_mb:.0f} → {f.ingest_rss_last_mb:.0f}",
            growth(f.ingest_rss_first_mb, f.ingest_rss_last_mb),
        ),
        (
            "sync RSS, first third → last third, MB",
            f"{f.sync_rss_first_mb:.0f} → {f.sync_rss_last_mb:.0f}",
            growth(f.sync_rss_first_mb, f.sync_rss_last_mb),
        ),
        (
            "syncs during the soak",
            ", ".join(f"{n} {status}" for status, n in sorted(f.sync_statuses.items())),
            f"{f.syncs_completed} completed",
        ),
        (
            "rows in the database / unique events sent (non-2xx or failed answers resent)",
            f"{f.rows_stored:,} / {f.unique_sent:,} ({f.non_2xx} resent)",
            "equal" if f.rows_stored == f.unique_sent else "MISMATCH",
        ),
    ]
