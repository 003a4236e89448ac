"""A source's health, green, amber or red, with the reasons in words: the console's badge.

- red: SendGrid posts nothing (the webhook is `deleted` or `disabled`), or the last finished
  sync failed (a rejected API key is one: the run's error says so);
- amber: any other unrepaired webhook finding (drift, `silent`, a check that failed), a last
  sync that was `partial` (a collection not read), runs that could not be read, or no event
  in the last hour without a clean webhook check to vouch for the quiet;
- green: events in the last hour, or a quiet account whose webhook was checked and found
  right (nothing wrong with a watched webhook: quiet means nothing was sent).
The status is the worst level among the reasons. No I/O here: the inputs are what the API
shows (the source with its webhook summary, the runs), so every rule is tested on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.schemas import (
    HealthLevel,
    HealthReason,
    SourceHealth,
    SourcePublic,
    SyncRun,
    WebhookFinding,
)
from shared.webhook_drift import DELETED, DISABLED

# Events within this long count as flowing.
RECENT = timedelta(hours=1)
# Findings that mean SendGrid posts nothing at all.
RED_FINDINGS = frozenset({DELETED, DISABLED})
# Collection statuses of a collection read completely; anything else is named in a partial run.
COMPLETE_COLLECTION = frozenset({"succeeded", "empty", "skipped"})
_ORDER: dict[HealthLevel, int] = {"red": 0, "amber": 1, "green": 2}


def source_health(
    source: SourcePublic,
    last_finished_run: SyncRun | None,
    now: datetime,
    *,
    runs_error: str | None = None,
) -> SourceHealth:
    """`source` carries its webhook summary (`GET /sources/{id}`'s answer)."""
    reasons = _findings(source.webhook.drift if source.webhook else [])
    if runs_error is not None:
        reasons.append(HealthReason(level="amber", text=f"sync runs unknown: {runs_error}"))
    elif last_finished_run is not None:
        reasons += _last_sync(last_finished_run)
    reasons.append(_flow(source, now))
    reasons.sort(key=lambda reason: _ORDER[reason.level])
    return SourceHealth(status=reasons[0].level, reasons=reasons)


def _repaired(finding: WebhookFinding) -> bool:
    # Repaired by the check that last found it: the webhook is right again.
    return finding.repaired_at is not None and finding.repaired_at >= finding.last_seen_at


def _findings(findings: list[WebhookFinding]) -> list[HealthReason]:
    reasons = []
    for finding in findings:
        if _repaired(finding):
            text = f"webhook {finding.finding}, repaired: {finding.detail}"
            reasons.append(HealthReason(level="green", text=text))
            continue
        level: HealthLevel = "red" if finding.finding in RED_FINDINGS else "amber"
        text = f"webhook {finding.finding}: {finding.detail}"
        reasons.append(HealthReason(level=level, text=text))
    return reasons


def _last_sync(run: SyncRun) -> list[HealthReason]:
    if run.status == "failed":
        why = run.error or "no collection was read"
        return [HealthReason(level="red", text=f"last sync failed: {why}")]
    if run.status == "partial":
        missed = [
            f"{c.collection} {c.status}" + (f" ({c.message})" if c.message else "")
            for c in run.collections
            if c.status not in COMPLETE_COLLECTION
        ]
        text = "last sync partial: " + ("; ".join(missed) or "a collection was not read")
        return [HealthReason(level="amber", text=text)]
    return []


def _flow(source: SourcePublic, now: datetime) -> HealthReason:
    last = source.webhook.last_event_at if source.webhook else None
    if last is not None and now - last <= RECENT:
        return HealthReason(level="green", text="events received in the last hour")
    quiet = "no event received yet" if last is None else f"last event {_ago(now - last)}"
    management = source.webhook_management
    watched = management is not None and (management.managed or management.signed)
    checked = management.checked_at if management is not None else None
    if not watched:
        why = "the webhook is not watched: configure it, or set its verification key"
    elif checked is None:
        why = "the webhook has not been checked yet"
    elif source.webhook and any(not _repaired(f) for f in source.webhook.drift):
        why = "the webhook check found something wrong"
    else:
        text = f"quiet: {quiet}; the webhook check {_ago(now - checked)} found it right"
        return HealthReason(level="green", text=text)
    return HealthReason(level="amber", text=f"{quiet}, and {why}")


def _ago(elapsed: timedelta) -> str:
    seconds = max(0, int(elapsed.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
