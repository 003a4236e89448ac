"""Reading messages and their events back from SendGrid's Email Logs (more-apis.md §4.2).

`POST /v3/logs` lists at most `limit` (≤ 1000) messages matching a filter and has no paging
("Pagination is not supported"), so a window of `sg_message_id_created_at` that answers exactly
`limit` messages may hold more: it is cut in two at a whole second, the earlier half read first,
until no window is full. A window of one second (the query language's resolution) that is
still full is cut by message status (each message has exactly one); a single status of a single
second still full is read as far as it goes and reported as a `Shortfall`, never passed over
in silence. `GET /v3/logs/{sg_message_id}` then gives each message's events, concurrently
within the client's limit (SYNC_CONCURRENCY in flight, 429s waited out for every request).

`read_email_logs` yields one `LogsWindow` per window read to the end, in time order and
contiguous: a job that stores a window's events and then its `end` can resume after a crash
with `since=end` and read only what comes after. A message's status can change between two
status queries of the same second (deferred, then delivered): such a message may be listed
twice (it is read once) or, rarely, missed by both; the job's de-duplication on `sg_event_id`
makes re-reading any window harmless.

SendGrid's parent accounts read a subuser's logs with `subusers`/`subuser`; sources are
accounts of their own here, so neither is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sync_service.client import SendGridClient
from sync_service.email_logs_query import (
    RESOLUTION,
    LogsFilter,
    can_split_statuses,
    ceil_second,
    describe_statuses,
    floor_second,
    halves,
    status_halves,
)
from sync_service.errors import (
    AuthRejected,
    EmailLogsRefused,
    SendGridError,
    SendGridForbidden,
    SendGridNotFound,
)

LOGS = "/v3/logs"
# The largest `limit` the spec allows; also the most one listing can say.
MAX_LIMIT = 1000
# "Most recent events will be returned upto the maximum of 100 events" (`events.maxItems`).
MAX_EVENTS = 100


@dataclass(frozen=True)
class LoggedMessage:
    """One message's detail, as `GET /v3/logs/{sg_message_id}` answered it."""

    detail: dict[str, Any]

    @property
    def sg_message_id(self) -> str:
        return str(self.detail["sg_message_id"])

    @property
    def events(self) -> list[Any]:
        events = self.detail.get("events")
        return events if isinstance(events, list) else []

    @property
    def possibly_truncated(self) -> bool:
        """SendGrid returns the 100 most recent events at most: older ones may be missing."""
        return len(self.events) >= MAX_EVENTS


@dataclass(frozen=True)
class Shortfall:
    """A window of one second and one status that still listed `limit` messages: more may
    exist, and no query can reach them. The backfill may be incomplete there."""

    start: datetime
    end: datetime
    status: str
    listed: int

    def describe(self) -> str:
        return (
            f"{self.listed} messages of status {self.status} created at"
            f" {self.start.isoformat()} filled the listing limit: more may exist there, and"
            " SendGrid's Email Logs API offers no way to list them"
        )


@dataclass(frozen=True)
class LogsWindow:
    """A window read to the end: every message created in [start, end) that SendGrid listed,
    with its events (except `not_found`). `end` is where to resume."""

    start: datetime
    end: datetime
    messages: tuple[LoggedMessage, ...]
    # Listed, then answered 404 on detail (past retention since, per the spec's 404).
    not_found: tuple[str, ...]
    shortfalls: tuple[Shortfall, ...]
    # The `POST /v3/logs` this window took, the full ones that were cut included.
    listings: int

    @property
    def listed(self) -> int:
        return len(self.messages) + len(self.not_found)

    @property
    def truncated(self) -> tuple[str, ...]:
        """Messages whose events may lack older ones (100 returned, the maximum)."""
        return tuple(m.sg_message_id for m in self.messages if m.possibly_truncated)


async def read_email_logs(
    client: SendGridClient,
    since: datetime,
    until: datetime,
    *,
    limit: int = MAX_LIMIT,
) -> AsyncIterator[LogsWindow]:
    """Every message created in [since, until) with its events, window by window in time
    order. `since` is taken down and `until` up to whole seconds (UTC, time zone required).

    Raises `EmailLogsRefused` on 401/403 (the message says what the key or account lacks), and
    the client's `SendGridError`s on anything else it could not get past (429s and 5xx after
    its retries); a window not yielded is not done, and resuming from the last yielded `end`
    reads it again.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1 to {MAX_LIMIT}, not {limit}")
    start, end = floor_second(since), ceil_second(until)
    # Windows still to read, the earliest on top: cutting one pushes its later half first.
    pending = [LogsFilter(start, end)] if start < end else []
    while pending:
        window = pending.pop()
        listings = 0
        while True:
            listings += 1
            listed = await _list(client, window, limit)
            if len(listed) < limit or window.width <= RESOLUTION:
                break
            earlier, later = halves(window)
            pending.append(later)
            window = earlier
        shortfalls: list[Shortfall] = []
        if len(listed) >= limit:
            # One second, still full: cut it by status.
            extra, shortfalls = await _by_status(client, window, limit)
            listings += extra.listings
            listed = extra.ids
        read = await _details(client, listed)
        yield LogsWindow(
            window.start, window.end, read.messages, read.not_found, tuple(shortfalls), listings
        )


@dataclass
class _Listed:
    ids: list[str]
    listings: int


async def _by_status(
    client: SendGridClient, second: LogsFilter, limit: int
) -> tuple[_Listed, list[Shortfall]]:
    ids: dict[str, None] = {}  # in listing order, each once
    shortfalls: list[Shortfall] = []
    listings = 0
    pending = list(reversed(status_halves(second)))
    while pending:
        window = pending.pop()
        listings += 1
        listed = await _list(client, window, limit)
        if len(listed) >= limit:
            if can_split_statuses(window):
                pending.extend(reversed(status_halves(window)))
                continue
            assert window.statuses is not None  # one status left
            shortfalls.append(Shortfall(window.start, window.end, window.statuses[0], len(listed)))
        ids.update(dict.fromkeys(listed))
    return _Listed(list(ids), listings), shortfalls


async def _list(client: SendGridClient, window: LogsFilter, limit: int) -> list[str]:
    """The message ids `POST /v3/logs` lists for `window`, each once."""
    body = {"query": window.query(), "limit": limit}
    try:
        answer = await client.post_json(LOGS, body)
    except (AuthRejected, SendGridForbidden) as exc:
        raise _refused(exc, LOGS) from exc
    messages = answer.get("messages") if isinstance(answer, dict) else None
    if not isinstance(messages, list):
        raise SendGridError(f"POST {LOGS} did not answer with a `messages` array")
    ids: dict[str, None] = {}
    for message in messages:
        sg_message_id = message.get("sg_message_id") if isinstance(message, dict) else None
        if not isinstance(sg_message_id, str) or not sg_message_id:
            raise SendGridError(
                f"POST {LOGS} listed a message without an sg_message_id"
                f" ({describe_statuses(window.statuses)}, from {window.start.isoformat()})"
            )
        ids[sg_message_id] = None
    return list(ids)


@dataclass
class _Details:
    messages: tuple[LoggedMessage, ...]
    not_found: tuple[str, ...]


async def _details(client: SendGridClient, ids: list[str]) -> _Details:
    """Each message's detail, concurrently (the client bounds what is in flight); the first
    failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_detail(client, sg_message_id)) for sg_message_id in ids]
    except BaseExceptionGroup as errors:
        # The first to fail stopped the others: a refusal (what a person acts on) first.
        refused = errors.subgroup(EmailLogsRefused)
        raise (refused or errors).exceptions[0] from None
    found: list[LoggedMessage] = []
    not_found: list[str] = []
    for sg_message_id, task in zip(ids, tasks, strict=True):
        detail = task.result()
        if detail is None:
            not_found.append(sg_message_id)
        else:
            found.append(detail)
    return _Details(tuple(found), tuple(not_found))


async def _detail(client: SendGridClient, sg_message_id: str) -> LoggedMessage | None:
    path = f"{LOGS}/{quote(sg_message_id, safe='')}"
    try:
        answer = await client.get_json(path)
    except SendGridNotFound:
        return None  # "it may be older than the data retention period" (the spec's 404)
    except (AuthRejected, SendGridForbidden) as exc:
        raise _refused(exc, f"{LOGS}/{{sg_message_id}}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("events"), list):
        raise SendGridError(f"GET {path} did not answer with a message and its `events` array")
    # The detail names the message; an answer without its id is trusted to be the one asked.
    answer.setdefault("sg_message_id", sg_message_id)
    return LoggedMessage(answer)


def _refused(exc: AuthRejected | SendGridForbidden, path: str) -> EmailLogsRefused:
    status = 401 if isinstance(exc, AuthRejected) else 403
    return EmailLogsRefused(status, path, exc.detail)
