"""Two receivers at once: two ingest service processes sharing one DATABASE_URL (and, on
ClickHouse, one WAREHOUSE_URL) are sent every signed batch at the same moment, as a load
balancer does when SendGrid resends a batch whose first delivery is still being written.

Promise: receivers share nothing but the databases, and still each event is stored once as
users see it, the webhook's counters count it once, and the `activity` view gives it once.
Run with the event tables on PostgreSQL (its primary keys refuse the second copy) and in
ClickHouse (which refuses no key: each table is written in its turn among the receivers,
`shared.event_table_turns`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
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

SENDERS = 4
BATCHES_PER_SENDER = 10
BATCH_SIZE = 200
# After every batch got its 2xx from both, every this-many-th batch is sent to both again.
RESEND_EVERY = 3


async def test_two_receivers_sent_the_same_batches_at_once_store_and_count_each_event_once(
    warehouse_settings: Settings,
    tmp_path: Path,
    processes: Callable[[list[str], dict[str, str], Path], Process],
) -> None:
    settings = warehouse_settings
    signer = Signer()
    source_id, schema, path = await register(settings, signer, unique_source_name("Receivers"))
    receivers = []
    for n in (1, 2):
        port = free_port()
        process = processes(
            sendgrid_source("ingest"),
            service_env(settings, INGEST_PORT=str(port)),
            tmp_path / f"ingest-{n}.log",
        )
        process.start()
        receivers.append((process, f"http://127.0.0.1:{port}"))
    for process, base in receivers:
        await wait_until_up(process, f"{base}/readyz")

    traffic = make_traffic(
        signer,
        senders=SENDERS,
        batches=BATCHES_PER_SENDER,
        size=BATCH_SIZE,
        duplicate_every=10,
        tag="receivers",
    )
    logs = [SenderLog(), SenderLog()]
    # Each receiver's 2xx answers, and the events of the POSTs they answered.
    answered: list[list[dict[str, int]]] = [[], []]
    posted = 0

    def on_accepted(receiver: int) -> Callable[[Batch], None]:
        def accepted(batch: Batch) -> None:
            nonlocal posted
            assert batch.answer is not None  # set just before, with no await in between
            answered[receiver].append(batch.answer)
            posted += len(batch.events)

        return accepted

    async def to_both(clients: list[httpx.AsyncClient], batch: Batch) -> None:
        await asyncio.gather(
            *(
                send_like_sendgrid(
                    clients[n], path, [batch], logs[n], lambda: "both", on_accepted=on_accepted(n)
                )
                for n in (0, 1)
            )
        )

    async def sender(clients: list[httpx.AsyncClient], own: list[Batch]) -> None:
        for batch in own:
            await to_both(clients, batch)

    resent = [batch for own in traffic for batch in own][::RESEND_EVERY]
    async with (
        httpx.AsyncClient(base_url=receivers[0][1], timeout=30) as first,
        httpx.AsyncClient(base_url=receivers[1][1], timeout=30) as second,
    ):
        clients = [first, second]
        async with asyncio.timeout(240):
            await asyncio.gather(*(sender(clients, own) for own in traffic))
            # SendGrid's resends of batches already stored, again to both at once.
            await asyncio.gather(*(to_both(clients, batch) for batch in resent))
        # What users see, asked of each receiver: the same, whichever answers.
        shown = []
        for client in clients:
            response = await client.get(
                f"/sources/{source_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            assert response.status_code == 200, response.text
            shown.append(response.json()["webhook"])

    sent = unique_ids(traffic)
    expected = expected_per_table(events_by_id(traffic))
    # Both receivers answered every POST 200 at the first attempt: neither holds up the other.
    answers = answered[0] + answered[1]
    assert len(answers) == 2 * (SENDERS * BATCHES_PER_SENDER + len(resent))
    both_logs = logs[0].answers + logs[1].answers
    assert {a.status for a in both_logs} == {200}, [
        (a.status, a.error) for a in both_logs if a.status != 200
    ][:5]

    # Stored once, as users read it: per table (FINAL on ClickHouse), and in `activity`.
    held = await stored_events(settings, schema)
    assert held.per_table == expected
    assert len(held.activity_ids) == len(set(held.activity_ids)) == len(sent)
    assert set(held.activity_ids) == sent
    # And as rows: each table written in its turn, so no copy even waits to be merged (at most
    # one per receiver could, were two to insert one event at once).
    assert len(sent) <= held.raw_rows <= 2 * len(sent)
    assert held.raw_rows == len(sent)

    # Counted once: across both receivers' answers, and in the webhook's counters.
    assert sum(answer["stored"] for answer in answers) == len(sent)
    assert sum(answer["duplicates"] for answer in answers) == posted - len(sent)
    assert sum(answer["rejected"] for answer in answers) == 0
    assert shown[0] == shown[1]
    assert shown[0]["events_stored"] == len(sent)
    assert shown[0]["duplicates_absorbed"] == posted - len(sent)
    assert shown[0]["events_last_24h"] == {
        table: expected.get(table, 0) for table in shown[0]["events_last_24h"]
    }
    assert sum(shown[0]["events_last_24h"].values()) == len(sent)

    print(
        f"\ntwo receivers ({'ClickHouse' if settings.clickhouse_url else 'PostgreSQL'} "
        f"warehouse): {events_sent(traffic)} events ({len(sent)} unique) in "
        f"{SENDERS * BATCHES_PER_SENDER} batches, each POSTed to both receivers at once, "
        f"{len(resent)} resent to both; {posted} events in 2xx answers; "
        "stored by receiver 1 / 2: "
        + " / ".join(str(sum(a["stored"] for a in own)) for own in answered)
        + f", duplicates {sum(a['duplicates'] for a in answers)}; "
        f"{held.raw_rows} rows before any merge, {sum(held.per_table.values())} with FINAL"
    )
