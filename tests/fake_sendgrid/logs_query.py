"""The query language of `POST /v3/logs` as tsg_logs_v3.yaml documents it
(`EmailLogsGetMessagesByFilterRequest.query`), for the fields the fake filters on:
`sg_message_id_created_at` compared (`>`, `<`, `>=`, `<=`) with `TIMESTAMP "...Z"`, and
`status IN ('a', 'b')`; conditions joined by `AND`, no nesting, case-sensitive. Anything else
is a `BadRequest` (SendGrid's 400), so a query the product builds wrong fails the test.

Written from the file, not from the product's query builder, so the two check each other.
"""

from __future__ import annotations

import bisect
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.fake_sendgrid.params import BadRequest

# `EmailLogsMessageStatus`.
STATUSES = ("processed", "delivered", "deferred", "dropped", "bounced", "blocked")

_AND = re.compile(r"\s+AND\s+")
_CREATED_AT = re.compile(
    r'sg_message_id_created_at\s*(>=|<=|>|<)\s*TIMESTAMP\s+"'
    r'(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)"'
)
_STATUS_IN = re.compile(r"status\s+IN\s*\(\s*('[^']*'(?:\s*,\s*'[^']*')*)\s*\)")
_COMPARE: dict[str, Callable[[datetime, datetime], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass
class LogsQuery:
    """What a query asks: created-at bounds and, when given, the statuses."""

    bounds: list[tuple[Callable[[datetime, datetime], bool], datetime]] = field(
        default_factory=list
    )
    statuses: set[str] | None = None

    def matches(self, created_at: datetime, status: str) -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        return all(compare(created_at, bound) for compare, bound in self.bounds)

    def created_range(self, times: Sequence[datetime]) -> range:
        """The positions in `times` (sorted) that the created-at bounds admit: a listing of a
        large generated account then costs a bisection, not a scan."""
        low, high = 0, len(times)
        for compare, bound in self.bounds:
            if compare is operator.ge:
                low = max(low, bisect.bisect_left(times, bound))
            elif compare is operator.gt:
                low = max(low, bisect.bisect_right(times, bound))
            elif compare is operator.lt:
                high = min(high, bisect.bisect_left(times, bound))
            else:
                high = min(high, bisect.bisect_right(times, bound))
        return range(low, max(low, high))


def parse_query(text: str | None) -> LogsQuery:
    query = LogsQuery()
    if text is None or not text.strip():
        return query  # no filter: the account's recent messages
    for condition in _AND.split(text.strip()):
        created = _CREATED_AT.fullmatch(condition)
        if created is not None:
            moment = datetime.fromisoformat(created[2].replace("Z", "+00:00")).astimezone(UTC)
            query.bounds.append((_COMPARE[created[1]], moment))
            continue
        status = _STATUS_IN.fullmatch(condition)
        if status is not None:
            values = {v.strip().strip("'") for v in status[1].split(",")}
            unknown = sorted(values - set(STATUSES))
            if unknown:
                raise BadRequest("query", f"invalid status value(s): {', '.join(unknown)}")
            query.statuses = values if query.statuses is None else query.statuses & values
            continue
        raise BadRequest("query", f"invalid query condition: {condition!r}")
    return query
