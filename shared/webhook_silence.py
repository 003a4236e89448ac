"""Silence: a webhook that has delivered nothing for WEBHOOK_SILENCE_ALERT while SendGrid's
statistics show it processed mail.

SendGrid's stats come by day, in the account's time zone, and a day's `processed` includes
mail sent before the silence began. So the days counted are those *after* the day of the last
event: on the last event's own day mail was processed and delivered as it should. A webhook
broken mid-day is therefore flagged once a later day shows mail processed (and the silence
has lasted the alert period); it is never flagged for an account that simply stopped sending.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from shared.sendgrid_stats import fetch_daily_stats
from shared.webhook_drift import SILENT, Finding


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 2 else f"{span.total_seconds() / 60:.0f} min"


async def silence(
    http: httpx.AsyncClient,
    base_url: str,
    api_key: str,
    *,
    quiet_since: datetime,
    now: datetime,
    alert: timedelta,
) -> Finding | None:
    """`silent` when nothing arrived since `quiet_since` (the last stored event, or when the
    source was registered) for at least `alert`, and SendGrid processed mail on a later day.
    Raises `sendgrid_stats.StatsApiError` (`StatsScopeMissing` without stats.read)."""
    quiet = now - quiet_since
    if quiet < alert:
        return None
    first_day = quiet_since.date()
    days = await fetch_daily_stats(http, base_url, api_key, first_day, now.date())
    later = [d for d in days if d.day > first_day and d.get("processed") > 0]
    processed = sum(d.get("processed") for d in later)
    if not processed:
        return None
    return Finding(
        SILENT,
        f"no event received for {_hours(quiet)} (since {quiet_since:%Y-%m-%d %H:%M} UTC) while "
        f"SendGrid processed {processed} emails from {later[0].day} to {later[-1].day}",
    )
