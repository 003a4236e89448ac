"""Scenario 2: the ingest process SIGKILLed under load, restarted on the same port.

Promise: a 2xx is only sent after the commit, so every event of a batch that got a 2xx is in
the warehouse even when the process dies the next instant; the senders' resends of what did
not get a 2xx land exactly once. Run with the event tables on PostgreSQL and in ClickHouse
(there "once" is as users read it, with FINAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from tests.faults.conftest import (
    Batch,
    Process,
    SenderLog,
    events_by_id,
    events_sent,
    expected_per_table,
    free_port,
    make_traffic,
    register,
    send_like_sendgrid,
    sendgrid_source,
    service_env,
    stored_events,
    unique_ids,
    unique_source_name,
    wait_until_up,
)
from tests.webhook_helpers import Signer

pytestmark = pytest.mark.slow

SENDERS = 8
BATCHES_PER_SENDER = 12
BATCH_SIZE = 300
KILL_AFTER_SHARE = 0.3


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            if (
                entry.name.isdigit()
                and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
            ):
                children.append(int(entry.name))
    return children


async def processes_still_running(pids: list[int], within_seconds: float) -> list[int]:
    """Those of `pids` still running after waiting up to `within_seconds` for them to end."""
    deadline = time.monotonic() + within_seconds
    running = pids
    while running and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        running = [pid for pid in running if _is_running(pid)]
    return running


def _is_running(pid: int) -> bool:
    """Alive and not a zombie (a dead child its parent, here killed, never waited for)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "zombie" not in line.lower()
    return False


async def test_sigkill_under_load_loses_no_accepted_event_and_stores_none_twice(
    warehouse_settings: Settings,
    tmp_path: Path,
    processes: Callable[[list[str], dict[str, str], Path], Process],
) -> None:
    settings = warehouse_settings
    signer = Signer()
    _, schema, path = await register(settings, signer, unique_source_name("Killed"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(settings, INGEST_PORT=str(port))
    first = processes(sendgrid_source("ingest"), env, tmp_path / "ingest-1.log")
    second = processes(sendgrid_source("ingest"), env, tmp_path / "ingest-2.log")
    first.start()
    await wait_until_up(first, f"{base}/readyz")

    traffic = make_traffic(
        signer,
        senders=SENDERS,
        batches=BATCHES_PER_SENDER,
        size=BATCH_SIZE,
        duplicate_every=10,
        tag="killed",
    )
    total_batches = SENDERS * BATCHES_PER_SENDER
    log = SenderLog()
    accepted: list[Batch] = []
    kill_now = asyncio.Event()
    phase = "first"

    def on_accepted(batch: Batch) -> None:
        accepted.append(batch)
        if len(accepted) >= KILL_AFTER_SHARE * total_batches:
            kill_now.set()

    async def kill_and_restart() -> dict[str, Any]:
        nonlocal phase
        await kill_now.wait()
        parsers = children_of(first.pid)
        exit_code = await first.kill()
        killed_at = time.monotonic()
        phase = "dead"
        # The process is gone: every 2xx a sender holds now was answered by it.
        accepted_by_first = list(accepted)
        stored_at_kill = (await stored_events(settings, schema)).activity_ids
        second.start()
        await wait_until_up(second, f"{base}/readyz")
        phase = "second"
        return {
            "parsers": parsers,
            "parsers_left": await processes_still_running(parsers, within_seconds=10),
            "down_seconds": time.monotonic() - killed_at,  # reported, never asserted
            "exit_code": exit_code,
            "accepted_by_first": accepted_by_first,
            "stored_at_kill": stored_at_kill,
        }

    async with httpx.AsyncClient(
        base_url=base, timeout=30, limits=httpx.Limits(max_connections=SENDERS)
    ) as client:
        async with asyncio.timeout(150):
            restart = asyncio.create_task(kill_and_restart())
            try:
                await asyncio.gather(
                    *(
                        send_like_sendgrid(
                            client, path, own, log, lambda: phase, on_accepted=on_accepted
                        )
                        for own in traffic
                    )
                )
                figures = await restart
            finally:
                restart.cancel()

    assert figures["exit_code"] == -9
    # The killed service's parser process (and multiprocessing's helper) left with it.
    assert figures["parsers"]
    assert figures["parsers_left"] == []
    # At the moment of the kill, every event of every batch that had got a 2xx was committed.
    at_kill = figures["stored_at_kill"]
    acknowledged = set().union(*(batch.ids for batch in figures["accepted_by_first"]))
    assert acknowledged <= set(at_kill)
    assert len(at_kill) == len(set(at_kill))

    # In the end every batch got its 2xx, and each unique event is stored exactly once.
    assert all(batch.accepted for own in traffic for batch in own)
    sent = unique_ids(traffic)
    held = await stored_events(settings, schema)
    stored = held.activity_ids
    assert len(stored) == len(set(stored)) == len(sent)
    assert set(stored) == sent
    assert held.per_table == expected_per_table(events_by_id(traffic))
    # ClickHouse: a copy not merged yet is counted once by FINAL; there is none to begin with,
    # since each table is written in its turn (shared.event_table_turns).
    assert held.raw_rows == len(sent)
    answers = [batch.answer for own in traffic for batch in own if batch.answer is not None]
    assert sum(answer["rejected"] for answer in answers) == 0
    assert sum(a["stored"] + a["duplicates"] for a in answers) == events_sent(traffic)
    # Nothing but 2xx, a refused/broken connection while the process was down, or 503.
    statuses = {a.status for a in log.answers if a.status is None or not 200 <= a.status < 300}
    assert statuses <= {None, 503}, [a.error for a in log.answers if a.status not in (None, 503)]

    lost_in_flight = log.count(lambda a: a.status is None and a.phase_sent == "first")
    print(
        f"\nsigkill ({'ClickHouse' if settings.clickhouse_url else 'PostgreSQL'} warehouse): "
        f"{events_sent(traffic)} events sent ({len(sent)} unique) in "
        f"{total_batches} batches by {SENDERS} senders; killed after "
        f"{len(figures['accepted_by_first'])} batches got a 2xx "
        f"({len(acknowledged)} events, all of them in the {len(at_kill)} rows stored at the "
        f"kill); down {figures['down_seconds']:.1f} s; "
        f"{lost_in_flight} requests in flight broke off; "
        f"{log.count(lambda a: a.status is None)} connection failures in all; "
        f"{log.count(lambda a: a.status == 503)} 503s; {log.resends()} resends; "
        f"{len(stored)} events stored in the end ({held.raw_rows} rows before any merge)"
    )
