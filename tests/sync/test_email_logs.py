"""Reading messages back from Email Logs: windows cut until none is full, a full second cut by
status, what no query can reach reported, 429s waited out, 403/401 stopping with what to do,
404s counted, and a read resumed from a window's end reading only what comes after it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from sync_service.client import SendGridClient
from sync_service.email_logs import LogsWindow, Shortfall, read_email_logs
from sync_service.errors import EmailLogsRefused
from tests.fake_sendgrid.logs_query import STATUSES
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.sync.fakes import FakeTime

SINCE = datetime(2026, 1, 10, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=1)


async def read_all(
    account_client: SendGridClient,
    since: datetime = SINCE,
    until: datetime = UNTIL,
    limit: int = 1000,
) -> list[LogsWindow]:
    return [window async for window in read_email_logs(account_client, since, until, limit=limit)]


def message_ids(windows: list[LogsWindow]) -> list[str]:
    return [m.sg_message_id for w in windows for m in w.messages]


def assert_contiguous(windows: list[LogsWindow], since: datetime, until: datetime) -> None:
    """The windows cover [since, until) in time order, each starting where the last ended."""
    assert windows[0].start == since
    assert windows[-1].end == until
    for before, after in itertools.pairwise(windows):
        assert after.start == before.end


async def test_one_query_when_the_window_is_not_full(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    ids = account.email_logs.generate(5, start=SINCE + timedelta(hours=3), seconds=60)

    windows = await read_all(account_client)

    assert account.email_logs.listings == [
        {
            "query": 'sg_message_id_created_at >= TIMESTAMP "2026-01-10T00:00:00Z"'
            ' AND sg_message_id_created_at < TIMESTAMP "2026-01-11T00:00:00Z"',
            "limit": 1000,
        }
    ]
    assert [(w.start, w.end, w.listed, w.listings) for w in windows] == [(SINCE, UNTIL, 5, 1)]
    assert sorted(message_ids(windows)) == ids
    assert [m.detail["to_email"] for m in windows[0].messages] == [
        f"user{n}@example.com" for n in range(5)
    ][::-1]  # in the listing's order, the most recent first


async def test_a_window_answering_exactly_limit_is_cut_until_none_is_full(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    """Exactly `limit` messages: the listing cannot say there are no more, so it is cut."""
    ids = account.email_logs.generate(10, start=SINCE + timedelta(hours=5), seconds=3600)

    windows = await read_all(account_client, limit=10)

    assert sorted(message_ids(windows)) == ids  # each once
    assert sum(w.listed for w in windows) == 10
    assert len(account.email_logs.listings) > 2
    assert_contiguous(windows, SINCE, UNTIL)
    assert all(w.listed < 10 for w in windows)


async def test_many_windows_read_every_message_once_in_time_order(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    ids = account.email_logs.generate(237, start=SINCE, seconds=86_400)

    windows = await read_all(account_client, limit=25)

    read = message_ids(windows)
    assert len(read) == len(set(read)) == 237
    assert set(read) == set(ids)
    assert_contiguous(windows, SINCE, UNTIL)
    assert sum(w.listings for w in windows) == len(account.email_logs.listings)
    created = {
        s.detail["sg_message_id"]: s.created_at for s in account.email_logs.messages.values()
    }
    for window in windows:
        assert all(window.start <= created[m.sg_message_id] < window.end for m in window.messages)
    assert sorted(set(account.email_logs.details_fetched)) == sorted(ids)


async def test_a_full_second_is_cut_by_status(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    second = SINCE + timedelta(hours=7)
    # 18 messages, 3 of each status: a second of them is full, half of the statuses is not.
    ids = account.email_logs.generate(18, start=second, seconds=1, statuses=STATUSES)

    windows = await read_all(account_client, limit=10)

    assert sorted(message_ids(windows)) == ids
    (full,) = [w for w in windows if w.start == second]
    assert (full.end, full.listed, full.shortfalls) == (second + timedelta(seconds=1), 18, ())
    queries = [body["query"] for body in account.email_logs.listings]
    one_second = (
        'sg_message_id_created_at >= TIMESTAMP "2026-01-10T07:00:00Z"'
        ' AND sg_message_id_created_at < TIMESTAMP "2026-01-10T07:00:01Z"'
    )
    assert [q for q in queries if q.startswith(one_second)] == [
        one_second,
        one_second + " AND status IN ('processed', 'delivered', 'deferred')",
        one_second + " AND status IN ('dropped', 'bounced', 'blocked')",
    ]


async def test_a_status_of_a_second_still_full_is_reported_not_dropped(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    second = SINCE + timedelta(hours=9)
    account.email_logs.generate(14, start=second, seconds=1, statuses=("delivered",))
    others = account.email_logs.generate(
        3, start=second, seconds=1, statuses=("bounced",), prefix="other"
    )

    windows = await read_all(account_client, limit=10)

    (full,) = [w for w in windows if w.shortfalls]
    assert full.shortfalls == (Shortfall(second, second + timedelta(seconds=1), "delivered", 10),)
    assert "10 messages of status delivered" in full.shortfalls[0].describe()
    assert full.listed == 13  # the 10 delivered it could list, and the 3 bounced
    assert set(others) <= set(message_ids(windows))
    queries = [b["query"] for b in account.email_logs.listings if "IN ('delivered')" in b["query"]]
    assert len(queries) == 1


async def test_429_is_waited_out_then_the_read_goes_on(
    account_client: SendGridClient, account: FakeAccount, fake_time: FakeTime
) -> None:
    ids = account.email_logs.generate(3, start=SINCE, seconds=60)
    account.email_logs.throttle(2, reset=fake_time.now + 30)

    windows = await read_all(account_client)

    assert sorted(message_ids(windows)) == ids
    assert len(account.email_logs.listings) == 3  # two 429s, then the listing
    assert fake_time.sleeps[:2] == [30, 1.0]  # until the reset; the reset is past: one second


async def test_403_on_the_listing_stops_with_what_the_account_and_key_need(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    account.email_logs.generate(3, start=SINCE, seconds=60)
    account.email_logs.forbidden = True

    with pytest.raises(EmailLogsRefused) as refused:
        await read_all(account_client)

    error = refused.value
    assert (error.status_code, error.path) == (403, "/v3/logs")
    message = str(error)
    assert "SendGrid refused the Email Logs API with 403 on /v3/logs (access forbidden)" in message
    assert "the SendGrid account must have the Email Logs API" in message
    assert "SendGrid does not document the permission's name" in message
    assert "Full Access key" in message
    assert len(account.email_logs.listings) == 1  # not retried: retrying cannot help


async def test_403_on_a_message_stops_the_read(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    ids = account.email_logs.generate(6, start=SINCE, seconds=60)
    account.forbidden.add(f"/v3/logs/{ids[2]}")

    with pytest.raises(EmailLogsRefused) as refused:
        await read_all(account_client)

    assert (refused.value.status_code, refused.value.path) == (403, "/v3/logs/{sg_message_id}")


async def test_401_stops_the_read_saying_the_key_is_not_valid(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    account.email_logs.generate(1, start=SINCE, seconds=60)
    account.key_revoked = True

    with pytest.raises(EmailLogsRefused) as refused:
        await read_all(account_client)

    assert refused.value.status_code == 401
    assert "the API key is wrong, revoked or expired" in str(refused.value)


async def test_a_message_past_retention_is_counted_and_the_rest_read(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    ids = account.email_logs.generate(4, start=SINCE, seconds=60)
    account.email_logs.not_found.add(ids[1])

    (window,) = await read_all(account_client)

    assert window.not_found == (ids[1],)
    assert sorted(message_ids([window])) == [ids[0], ids[2], ids[3]]
    assert window.listed == 4


async def test_a_message_with_100_events_may_be_truncated(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    def opens(message: str, count: int) -> list[dict[str, object]]:
        return [
            {"event": "open", "email": "a@example.com", "sg_message_id": message,
             "sg_event_id": f"{message}-{n}", "timestamp": 1_768_003_200 + n}
            for n in range(count)
        ]  # fmt: skip

    account.email_logs.add("full", opens("full", 100), created_at=SINCE)
    account.email_logs.add("short", opens("short", 99), created_at=SINCE)

    (window,) = await read_all(account_client)

    assert window.truncated == ("full",)


async def test_a_read_resumed_from_a_window_end_reads_only_what_comes_after(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    ids = account.email_logs.generate(120, start=SINCE, seconds=86_400)
    created = {
        s.detail["sg_message_id"]: s.created_at for s in account.email_logs.messages.values()
    }
    first: list[LogsWindow] = []
    async for window in read_email_logs(account_client, SINCE, UNTIL, limit=20):
        first.append(window)
        if len(first) == 3:
            break  # the job stopped here; it had stored the third window's end
    resume_at = first[-1].end
    asked_before = len(account.email_logs.listings)

    rest = await read_all(account_client, since=resume_at, limit=20)

    before = set(message_ids(first))
    after = set(message_ids(rest))
    assert not before & after
    assert before | after == set(ids)
    assert after == {i for i in ids if created[i] >= resume_at}
    assert_contiguous(rest, resume_at, UNTIL)
    resumed_queries = [b["query"] for b in account.email_logs.listings[asked_before:]]
    assert resumed_queries[0].startswith(
        f'sg_message_id_created_at >= TIMESTAMP "{resume_at.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
    )


async def test_the_bounds_are_taken_to_whole_seconds_and_must_have_a_time_zone(
    account_client: SendGridClient, account: FakeAccount
) -> None:
    since = SINCE + timedelta(microseconds=400_000)
    until = SINCE + timedelta(seconds=10, microseconds=1)

    windows = await read_all(account_client, since, until)

    assert (windows[0].start, windows[0].end) == (SINCE, SINCE + timedelta(seconds=11))
    with pytest.raises(ValueError, match="time zone"):
        await read_all(account_client, since=datetime(2026, 1, 10))
    with pytest.raises(ValueError, match="limit"):
        await read_all(account_client, limit=1001)
    assert await read_all(account_client, since=UNTIL, until=UNTIL) == []
