"""The filter of `POST /v3/logs`, in the query language tsg_logs_v3.yaml documents
(`EmailLogsGetMessagesByFilterRequest.query`): a window of `sg_message_id_created_at` and,
where a window must be cut further, a set of message statuses.

The grammar, as the file gives it: `sg_message_id_created_at` takes `>`, `<`, `>=`, `<=`
against `TIMESTAMP "...Z"` (double quotes, whole seconds in its example
`TIMESTAMP "2025-01-01T00:00:00Z"`); `status` takes `IN ('value1', 'value2')` (single
quotes); conditions are joined by `AND`, without nesting, case-sensitively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CREATED_AT = "sg_message_id_created_at"
# `EmailLogsMessageStatus`: each message has exactly one of these at a time.
STATUSES: tuple[str, ...] = ("processed", "delivered", "deferred", "dropped", "bounced", "blocked")
# The finest a window can be cut: the timestamps of the query language have whole seconds.
RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True)
class LogsFilter:
    """Messages created in [start, end) (whole seconds, UTC), of `statuses` (None: any)."""

    start: datetime
    end: datetime
    statuses: tuple[str, ...] | None = None

    def query(self) -> str:
        conditions = [
            f"{CREATED_AT} >= {timestamp_literal(self.start)}",
            f"{CREATED_AT} < {timestamp_literal(self.end)}",
        ]
        if self.statuses is not None:
            conditions.append(f"status IN ({', '.join(quoted(s) for s in self.statuses)})")
        return " AND ".join(conditions)

    @property
    def width(self) -> timedelta:
        return self.end - self.start


def timestamp_literal(moment: datetime) -> str:
    return f'TIMESTAMP "{moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}"'


def quoted(value: str) -> str:
    # The statuses are fixed words; a quote in one would be a bug here, not data to escape.
    if "'" in value:
        raise ValueError(f"a status with a quote cannot be put in a query: {value!r}")
    return f"'{value}'"


def floor_second(moment: datetime) -> datetime:
    """`moment` in UTC, down to its whole second (a window's start: nothing before is lost)."""
    _require_aware(moment)
    return moment.astimezone(UTC).replace(microsecond=0)


def ceil_second(moment: datetime) -> datetime:
    """`moment` in UTC, up to the next whole second (a window's end: nothing before is lost)."""
    floored = floor_second(moment)
    return floored if floored == moment else floored + RESOLUTION


def halves(window: LogsFilter) -> tuple[LogsFilter, LogsFilter]:
    """The window cut in two at a whole second, the earlier half first."""
    seconds = int(window.width / RESOLUTION)
    if seconds < 2:
        raise ValueError("a window of one second cannot be cut in time")
    middle = window.start + RESOLUTION * math.floor(seconds / 2)
    return (
        LogsFilter(window.start, middle, window.statuses),
        LogsFilter(middle, window.end, window.statuses),
    )


def status_halves(window: LogsFilter) -> tuple[LogsFilter, LogsFilter]:
    """The window's statuses cut in two (all of them when it has none)."""
    statuses = window.statuses if window.statuses is not None else STATUSES
    if len(statuses) < 2:
        raise ValueError("a window of one status cannot be cut by status")
    middle = len(statuses) // 2
    return (
        LogsFilter(window.start, window.end, tuple(statuses[:middle])),
        LogsFilter(window.start, window.end, tuple(statuses[middle:])),
    )


def can_split_statuses(window: LogsFilter) -> bool:
    return window.statuses is None or len(window.statuses) > 1


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a time without a time zone cannot bound a window: {moment!r}")


def describe_statuses(statuses: Sequence[str] | None) -> str:
    return "any status" if statuses is None else "status " + ", ".join(statuses)
