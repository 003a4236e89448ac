"""Scenario 4: SendGrid's API misbehaving during a whole sync run, on PostgreSQL.

Promise: each fault ends in a bounded time (the client's injected sleep and clock: no test
waits), leaves a precise entry in the run ledger, and leaves the tables either unchanged or
complete: rows written before a failure are whole rows, and nothing is marked deleted.

The mechanisms are unit-tested in tests/sync (retries and rate limits: test_client.py; export
download, expiry and polling: test_contacts_export.py; truncated gzip: test_export_files.py;
repeated page tokens: test_pagination.py). These tests check what a user sees of the same
faults: the run's status, the ledger's message, and the rows.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa

from shared.db import create_engine
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate
from shared.settings import Settings
from shared.source_rows import Source
from shared.tables import source_tables
from sync_service.client import RetryPolicy
from sync_service.contacts_export import ExportPolicy
from sync_service.ledger import RunRecord, list_runs
from sync_service.listing_writer import BATCH_SIZE
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.conftest import SENDGRID_TEST_URL, api_key
from tests.fake_sendgrid.contacts import Contact
from tests.fake_sendgrid.payloads import error_body, rate_limit_headers, token_page
from tests.fake_sendgrid.respx_route import DOWNLOADS_HOST, FakeAccount
from tests.sync.fakes import FakeTime

API = SENDGRID_TEST_URL
LISTS = f"{API}/v3/marketing/lists"
SEGMENTS = f"{API}/v3/marketing/segments/2.0"
POLICY = RetryPolicy(max_attempts=4, backoff_initial=1.0, backoff_max=8.0, max_rate_limit_wait=60)
EXPORT = ExportPolicy(poll_initial=1.0, poll_max=5.0, max_wait=60.0)
# Longest a failing request can keep the run: three backoffs of at most backoff_max + jitter.
RETRY_BOUND = 3 * (POLICY.backoff_max + POLICY.backoff_initial)
# Enough contacts for whole upsert batches before a failure, in the tests about the export;
# a few elsewhere, to keep the suite fast.
MANY_CONTACTS = 12_000
TABLES = ("lists", "segments", "recipients", "campaigns")
NEW_API = "served by the new Marketing Campaigns API"
UNTOUCHED = "nothing was marked deleted"

# What a respx route answers with; `account.answer` is the fake account's own answer.
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def contacts() -> int:
    return 20


@pytest.fixture
def account(sendgrid: respx.MockRouter, contacts: int) -> FakeAccount:
    fake = FakeAccount(API)
    fake.install(sendgrid)
    for n in range(3):
        fake.add_list(str(uuid.UUID(int=10_000 + n)), f"list {n}", n * 10)
        fake.add_segment(str(uuid.UUID(int=20_000 + n)), f"segment {n}", n, [])
    fake.contacts = [
        Contact(str(uuid.UUID(int=n + 1)), f"user{n}@example.com", f"First{n}")
        for n in range(contacts)
    ]
    fake.export_files = 2
    for n in range(2):
        fake.add_single_send(str(uuid.UUID(int=30_000 + n)), f"send {n}", [])
    return fake


@dataclass
class Synced:
    """A source after one complete sync, and its tables at that point."""

    deps: SyncDependencies
    service: SyncService
    source: Source
    before: dict[str, dict[str, dict[str, Any]]]


async def read_tables(deps: SyncDependencies, source: Source) -> dict[str, dict[str, Any]]:
    tables = source_tables(source.schema_name)
    found: dict[str, dict[str, Any]] = {}
    async with deps.engine.connect() as connection:
        for name in TABLES:
            table = tables.objects[name]
            key = next(iter(table.primary_key.columns)).name
            rows = await connection.execute(sa.select(table))
            found[name] = {row._mapping[key]: dict(row._mapping) for row in rows}
    return found


def without_sync_time(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: {k: v for k, v in row.items() if k != "synced_at"} for key, row in rows.items()}


@pytest.fixture
async def synced(
    settings: Settings,
    sendgrid: respx.MockRouter,
    fake_time: FakeTime,
    account: FakeAccount,
    contacts: int,
) -> AsyncIterator[Synced]:
    engine = create_engine(settings.DATABASE_URL)
    async with httpx.AsyncClient() as http:
        deps = SyncDependencies(
            engine,
            http,
            settings,
            retry=POLICY,
            export=EXPORT,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        source, _ = await SourceRegistry(engine, settings, http).create(
            SourceCreate(name="SendGrid", api_key=api_key())
        )
        service = SyncService(deps)
        first = await service.run(source.id, "initial")
        assert first is not None
        assert first.status == "succeeded", first
        before = await read_tables(deps, source)
        assert [len(before[name]) for name in TABLES] == [3, 3, contacts, 2]
        fake_time.sleeps.clear()
        yield Synced(deps, service, source, before)
    await engine.dispose()


async def run_again(synced: Synced) -> RunRecord:
    """Run the sync again; its ledger entry as stored (what the API lists)."""
    outcome = await synced.service.run(synced.source.id, "manual")
    assert outcome is not None
    [record] = [
        r for r in await list_runs(synced.deps.engine, synced.source.id) if r.id == outcome.run_id
    ]
    assert (record.status, record.error) == (outcome.status, outcome.error)
    assert record.finished_at is not None
    return record


def collection(record: RunRecord, name: str) -> tuple[str, int, int, str | None]:
    [found] = [c for c in record.collections if c.collection == name]
    return found.status, found.rows_upserted, found.rows_deleted, found.message


async def assert_no_corrupted_rows(synced: Synced) -> None:
    """Same objects with the same content (the account did not change), none deleted."""
    after = await read_tables(synced.deps, synced.source)
    for name in TABLES:
        assert without_sync_time(after[name]) == without_sync_time(synced.before[name]), name
        assert all(row["deleted_at"] is None for row in after[name].values()), name


def replace(router: respx.MockRouter, route: respx.Route, handler: Handler) -> list[httpx.Request]:
    """Answer the route's pattern with `handler` from now on; returns the requests it sees."""
    seen: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return await handler(request)

    route.side_effect = answer
    return seen


def failing_then(failures: list[Handler], then: Handler) -> Handler:
    remaining = list(failures)

    async def answer(request: httpx.Request) -> httpx.Response:
        return await (remaining.pop(0)(request) if remaining else then(request))

    return answer


def status(code: int, message: str) -> Handler:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, json=error_body(message))

    return answer


async def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out reading the answer", request=request)


# --- 5xx bursts ------------------------------------------------------------------------------


async def test_a_5xx_burst_shorter_than_the_retries_is_ridden_out(
    synced: Synced, sendgrid: respx.MockRouter, account: FakeAccount, fake_time: FakeTime
) -> None:
    burst = [status(503, "service unavailable"), status(502, "bad gateway"), status(500, "oops")]
    seen = replace(sendgrid, sendgrid.get(LISTS), failing_then(burst, account.answer))

    record = await run_again(synced)

    assert record.status == "succeeded", record
    assert collection(record, "lists") == (
        "succeeded", 3, 0,
        f"read from /v3/marketing/lists (0 new, 0 changed, 3 unchanged); {NEW_API}",
    )  # fmt: skip
    assert len(seen) == 4
    assert len(fake_time.sleeps) == 3
    assert sum(fake_time.sleeps) <= RETRY_BOUND
    await assert_no_corrupted_rows(synced)


async def test_a_5xx_burst_longer_than_the_retries_fails_only_that_collection(
    synced: Synced, sendgrid: respx.MockRouter, fake_time: FakeTime
) -> None:
    seen = replace(sendgrid, sendgrid.get(LISTS), status(503, "service unavailable"))

    record = await run_again(synced)

    assert record.status == "partial"
    assert collection(record, "lists") == (
        "failed", 0, 0,
        "/v3/marketing/lists answered 503: service unavailable "
        f"(0 rows were written before the failure; {UNTOUCHED})",
    )  # fmt: skip
    assert {collection(record, name)[0] for name in TABLES if name != "lists"} == {"succeeded"}
    assert len(seen) == POLICY.max_attempts
    assert len(fake_time.sleeps) == POLICY.max_attempts - 1
    assert sum(fake_time.sleeps) <= RETRY_BOUND
    await assert_no_corrupted_rows(synced)


async def test_the_whole_api_answering_503_fails_the_run_before_any_write(
    synced: Synced, account: FakeAccount, fake_time: FakeTime
) -> None:
    account.unavailable = True

    record = await run_again(synced)

    assert record.status == "failed"
    assert record.error == (
        "could not tell which API to read: "
        "/v3/marketing/contacts/count answered 503: service unavailable"
    )
    assert record.collections == []
    assert sum(fake_time.sleeps) <= RETRY_BOUND
    await assert_no_corrupted_rows(synced)


# --- 429 with reset headers ------------------------------------------------------------------


async def test_429s_are_waited_out_until_their_reset_then_the_run_completes(
    synced: Synced, sendgrid: respx.MockRouter, account: FakeAccount, fake_time: FakeTime
) -> None:
    async def limited(request: httpx.Request) -> httpx.Response:
        headers = rate_limit_headers(remaining=0, reset=fake_time.now + 37)
        return httpx.Response(429, json=error_body("too many requests"), headers=headers)

    seen = replace(sendgrid, sendgrid.get(LISTS), failing_then([limited, limited], account.answer))

    record = await run_again(synced)

    assert record.status == "succeeded", record
    assert collection(record, "lists")[:3] == ("succeeded", 3, 0)
    assert len(seen) == 3
    # Exactly until each reset: not earlier (it would burn an attempt), not longer.
    assert fake_time.sleeps == [37.0, 37.0]
    await assert_no_corrupted_rows(synced)


async def test_429s_that_never_end_fail_the_collection_after_bounded_waits(
    synced: Synced, sendgrid: respx.MockRouter, fake_time: FakeTime
) -> None:
    async def limited(request: httpx.Request) -> httpx.Response:
        headers = rate_limit_headers(remaining=0, reset=fake_time.now + 86_400)
        return httpx.Response(429, json=error_body("too many requests"), headers=headers)

    seen = replace(sendgrid, sendgrid.get(LISTS), limited)

    record = await run_again(synced)

    assert record.status == "partial"
    assert collection(record, "lists") == (
        "failed", 0, 0,
        "SendGrid kept rate-limiting /v3/marketing/lists (429) "
        f"(0 rows were written before the failure; {UNTOUCHED})",
    )  # fmt: skip
    assert len(seen) == POLICY.max_attempts
    # A reset a day away is waited for only up to the bound, on each attempt.
    assert fake_time.sleeps == [POLICY.max_rate_limit_wait] * (POLICY.max_attempts - 1)
    await assert_no_corrupted_rows(synced)


# --- timeouts --------------------------------------------------------------------------------


async def test_timeouts_on_every_attempt_fail_the_collection_with_the_cause(
    synced: Synced, sendgrid: respx.MockRouter, fake_time: FakeTime
) -> None:
    seen = replace(sendgrid, sendgrid.get(SEGMENTS), timeout)

    record = await run_again(synced)

    assert record.status == "partial"
    assert collection(record, "segments") == (
        "failed", 0, 0,
        "/v3/marketing/segments/2.0 timed out (ReadTimeout) "
        f"(0 rows were written before the failure; {UNTOUCHED})",
    )  # fmt: skip
    assert len(seen) == POLICY.max_attempts
    assert sum(fake_time.sleeps) <= RETRY_BOUND
    await assert_no_corrupted_rows(synced)


class _BreaksOff(httpx.AsyncByteStream):
    """A body that delivers `data`, then the connection times out."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data
        raise httpx.ReadTimeout("timed out reading the export file")


@pytest.mark.parametrize("contacts", [MANY_CONTACTS])
async def test_a_download_that_times_out_midway_fails_only_the_contacts(
    synced: Synced, sendgrid: respx.MockRouter, account: FakeAccount
) -> None:
    async def broken(request: httpx.Request) -> httpx.Response:
        whole = (await account.answer(request)).content
        return httpx.Response(200, stream=_BreaksOff(whole[: len(whole) * 3 // 4]))

    replace(sendgrid, sendgrid.get(host=DOWNLOADS_HOST), broken)

    record = await run_again(synced)

    assert record.status == "partial", record
    state, written, deleted, message = collection(record, "recipients")
    assert (state, deleted) == ("failed", 0)
    assert message is not None
    assert "ReadTimeout" in message
    assert message.endswith(f"({written} rows were written before the failure; {UNTOUCHED})")
    assert collection(record, "campaigns")[0] == "succeeded"
    await assert_no_corrupted_rows(synced)


# --- the contacts export ---------------------------------------------------------------------


def complete_rows(gzip_prefix: bytes) -> int:
    """Data rows (after the header) whose line end is inside the readable part of the file."""
    text = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16).decompress(gzip_prefix)
    return text.count(b"\n") - 1


@pytest.mark.parametrize("contacts", [MANY_CONTACTS])
async def test_a_truncated_gzip_export_fails_the_contacts_after_whole_batches_only(
    synced: Synced, sendgrid: respx.MockRouter, account: FakeAccount, contacts: int
) -> None:
    account.export_files = 1
    truncated: list[bytes] = []

    async def cut(request: httpx.Request) -> httpx.Response:
        whole = (await account.answer(request)).content
        assert gzip.decompress(whole).count(b"\n") == contacts + 1
        truncated.append(whole[: len(whole) * 3 // 4])
        return httpx.Response(200, content=truncated[-1])

    replace(sendgrid, sendgrid.get(host=DOWNLOADS_HOST), cut)

    record = await run_again(synced)

    readable = complete_rows(truncated[0])
    assert 0 < readable < contacts
    written = readable // BATCH_SIZE * BATCH_SIZE  # rows reach the table a whole batch at a time
    assert written > 0
    assert record.status == "partial"
    assert collection(record, "recipients") == (
        "failed", written, 0,
        "an export file ended in the middle of its gzip stream "
        f"({written} rows were written before the failure; {UNTOUCHED})",
    )  # fmt: skip
    assert len(truncated) == 1  # a broken file is not fetched again and again
    await assert_no_corrupted_rows(synced)


@pytest.mark.parametrize("contacts", [MANY_CONTACTS])
@pytest.mark.parametrize(
    ("code", "body"),
    [
        (403, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"),
        (404, "<Error><Code>NoSuchKey</Code><Message>No such key</Message></Error>"),
    ],
    ids=["403-expired", "404-gone"],
)  # fmt: skip
async def test_an_expired_export_url_fails_the_contacts_and_says_the_link_may_have_expired(
    synced: Synced,
    sendgrid: respx.MockRouter,
    account: FakeAccount,
    contacts: int,
    code: int,
    body: str,
) -> None:
    async def second_file_gone(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/1.csv.gz"):
            return httpx.Response(code, text=body, headers={"Content-Type": "application/xml"})
        return await account.answer(request)

    seen = replace(sendgrid, sendgrid.get(host=DOWNLOADS_HOST), second_file_gone)

    record = await run_again(synced)

    # The first file (every other contact) is read whole before the second one is refused.
    written = contacts // 2 // BATCH_SIZE * BATCH_SIZE
    assert record.status == "partial"
    assert collection(record, "recipients") == (
        "failed", written, 0,
        f"downloading an export file failed with HTTP {code} (the link may have expired): "
        f"{body} ({written} rows were written before the failure; {UNTOUCHED})",
    )  # fmt: skip
    assert [request.url.path.rsplit("/", 1)[1] for request in seen] == ["0.csv.gz", "1.csv.gz"]
    await assert_no_corrupted_rows(synced)


# --- pages that never end --------------------------------------------------------------------


def lists_page(account: FakeAccount, items: slice, token: str | None, next_token: str) -> Handler:
    async def answer(request: httpx.Request) -> httpx.Response:
        body = token_page(
            account.lists[items],
            self_url=f"{LISTS}?page_size=1000&page_token={token or ''}",
            next_url=f"{LISTS}?page_size=1000&page_token={next_token}",
        )
        return httpx.Response(200, json=body)

    return answer


async def test_a_repeating_page_token_stops_the_listing_and_marks_nothing_deleted(
    synced: Synced, sendgrid: respx.MockRouter, account: FakeAccount, fake_time: FakeTime
) -> None:
    seen = replace(
        sendgrid,
        sendgrid.get(LISTS),
        failing_then(
            [lists_page(account, slice(0, 2), None, "AAA")],
            lists_page(account, slice(2, 3), "AAA", "AAA"),
        ),
    )

    record = await run_again(synced)

    assert record.status == "partial"
    assert collection(record, "lists") == (
        "failed", 3, 0,
        "/v3/marketing/lists: SendGrid repeated the page token 'AAA'; stopped instead of "
        f"reading the same pages again (3 rows were written before the failure; {UNTOUCHED})",
    )  # fmt: skip
    assert len(seen) == 2
    assert fake_time.sleeps == []
    await assert_no_corrupted_rows(synced)


async def test_fresh_tokens_for_the_same_page_forever_are_stopped(
    synced: Synced, sendgrid: respx.MockRouter, account: FakeAccount
) -> None:
    calls = 0
    guard = 50  # past this, the fake ends the listing so a regression cannot hang the suite

    async def same_page_new_token(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls >= guard:
            return await account.answer(request)
        return await lists_page(account, slice(0, 3), str(calls - 1), str(calls))(request)

    replace(sendgrid, sendgrid.get(LISTS), same_page_new_token)

    record = await run_again(synced)

    assert calls == 2
    state, written, deleted, message = collection(record, "lists")
    assert (state, written, deleted) == ("failed", 3, 0)
    assert message is not None
    assert "returned the same rows" in message
    await assert_no_corrupted_rows(synced)
