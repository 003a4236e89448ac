"""A reconciled day's figures and its one-line verdict (no I/O).

Only the alarmed metrics (shared.completeness_metrics) decide the verdict: a day is
`complete` when each of them stored exactly what SendGrid counted, `missing` when any stored
fewer, `more_stored` when none stored fewer and some stored more (a duplicate SendGrid sent
with a new `sg_event_id`, or a `stats_timezone` that is not the account's: days cut in the
wrong zone show as missing on some days and as more on others).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shared.completeness_metrics import BY_METRIC, METRICS

Status = Literal["complete", "missing", "more_stored"]


@dataclass(frozen=True)
class MetricFigures:
    metric: str
    sendgrid_count: int
    stored_count: int

    @property
    def missing(self) -> int:
        """SendGrid's count less the stored one: negative when more are stored."""
        return self.sendgrid_count - self.stored_count

    @property
    def ratio(self) -> float | None:
        """Stored / SendGrid's count: 1.0 when both are 0, None when only SendGrid's is."""
        if self.sendgrid_count == 0:
            return 1.0 if self.stored_count == 0 else None
        return self.stored_count / self.sendgrid_count

    @property
    def alarmed(self) -> bool:
        return BY_METRIC[self.metric].alarmed


def _in_order(figures: Iterable[MetricFigures]) -> list[MetricFigures]:
    order = {metric.metric: n for n, metric in enumerate(METRICS)}
    return sorted(figures, key=lambda f: order.get(f.metric, len(order)))


def verdict(figures: Iterable[MetricFigures]) -> tuple[Status, str]:
    """The day's status and its line: `complete`, `12 events missing in delivered, 3 in
    processed`, `more stored than SendGrid counts (opens +2)`."""
    alarmed = [f for f in _in_order(figures) if f.alarmed]
    short = [f for f in alarmed if f.missing > 0]
    extra = [f for f in alarmed if f.missing < 0]
    more = ""
    if extra:
        listed = ", ".join(f"{f.metric} +{-f.missing}" for f in extra)
        more = f"more stored than SendGrid counts ({listed})"
    if not short:
        return ("more_stored", more) if extra else ("complete", "complete")
    first, *others = short
    noun = "event" if first.missing == 1 else "events"
    line = ", ".join(
        [f"{first.missing} {noun} missing in {first.metric}"]
        + [f"{f.missing} in {f.metric}" for f in others]
    )
    return "missing", f"{line}; {more}" if more else line


def worst_ratio(figures: Iterable[MetricFigures]) -> float:
    """The lowest ratio among the alarmed metrics (1.0 when all are complete or more)."""
    ratios = [f.ratio for f in figures if f.alarmed and f.ratio is not None]
    return min(ratios, default=1.0)
