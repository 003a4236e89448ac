"""Which stored events each metric of SendGrid's daily statistics counts (more-apis.md §3.4).

A metric is *alarmed* when its webhook counterpart is one event per counted email, so that a
difference means events are missing (or extra): `processed`, `delivered`, `bounces`,
`blocks`, the three drop reasons, `invalid_emails`, `opens`, `clicks`, `spam_reports`,
`unsubscribes`. The others are kept beside them as *trends*, never alarmed on: `deferred`
(the webhook sends one event per delivery attempt, and whether SendGrid counts attempts or
emails is not documented) and `unique_opens`/`unique_clicks` (SendGrid judges uniqueness over
a 7-day window the webhook cannot reproduce; they are compared with the distinct addresses
of the day). `requests` has no webhook counterpart at all and is not compared; nor are drops
for reasons SendGrid's statistics leave out (Spam Content, Invalid SMTPAPI header, ...).

Each warehouse counts them (`shared.event_counts`), a day in one statement: a `UNION ALL` of
one range count per metric, so a day costs one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricCount:
    """SendGrid's `metric` against the rows of `table` (with `column == value`, when set)."""

    metric: str
    table: str
    column: str | None = None
    value: str | None = None
    alarmed: bool = True
    # Count the distinct values of this column instead of the rows (unique metrics).
    distinct: str | None = None


METRICS: tuple[MetricCount, ...] = (
    MetricCount("processed", "processed"),
    MetricCount("delivered", "delivered"),
    MetricCount("bounces", "bounce", "type", "bounce"),
    MetricCount("blocks", "bounce", "type", "blocked"),
    MetricCount("bounce_drops", "dropped", "reason", "Bounced Address"),
    MetricCount("spam_report_drops", "dropped", "reason", "Spam Reporting Address"),
    MetricCount("unsubscribe_drops", "dropped", "reason", "Unsubscribed Address"),
    MetricCount("invalid_emails", "dropped", "reason", "Invalid"),
    MetricCount("opens", "_open"),
    MetricCount("clicks", "click"),
    MetricCount("spam_reports", "spam_report"),
    MetricCount("unsubscribes", "unsubscribe"),
    MetricCount("deferred", "deferred", alarmed=False),
    MetricCount("unique_opens", "_open", alarmed=False, distinct="email"),
    MetricCount("unique_clicks", "click", alarmed=False, distinct="email"),
)

BY_METRIC: dict[str, MetricCount] = {metric.metric: metric for metric in METRICS}
ALARMED: tuple[str, ...] = tuple(metric.metric for metric in METRICS if metric.alarmed)
TRENDS: tuple[str, ...] = tuple(metric.metric for metric in METRICS if not metric.alarmed)


# The event tables some metric counts (the earliest event among them starts collecting).
COMPARED_TABLES: tuple[str, ...] = tuple(sorted({metric.table for metric in METRICS}))
