"""How the source commands print a source: what `GET /sources/{id}` answers, in lines."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from shared.schemas import SourcePublic, WebhookSummary


def print_source(out: Console, source: SourcePublic) -> None:
    """Every field of the source's public view (never its API key), then its webhook."""
    interval = source.sync_interval_seconds
    out.print(f"  id           {source.id}")
    out.print(f"  schema       {source.schema_name}")
    out.print(f"  region       {source.region}")
    out.print(f"  webhook URL  {source.webhook_url}")
    out.print(f"  signed       {'yes' if source.webhook_signed else 'no'}")
    out.print(f"  API key      fingerprint {source.api_key_fingerprint}")
    out.print(f"  scopes       {', '.join(source.scopes) or 'none'}")
    out.print(f"  interval     {_duration(interval)} ({interval} s)")
    out.print(f"  collections  {', '.join(source.collections)}")
    out.print(f"  stats zone   {source.stats_timezone}")
    out.print(f"  created      {_moment(source.created_at)}")
    out.print(f"  updated      {_moment(source.updated_at)}")
    print_management(out, source)
    if source.webhook is not None:
        print_webhook(out, source.webhook)
    for warning in source.warnings:
        out.print(f"warning: {warning}", style="yellow")


def print_management(out: Console, source: SourcePublic) -> None:
    """Whether sendgrid-source configured the webhook in SendGrid, and how its test went."""
    managed = source.webhook_management
    if managed is None or not managed.managed:
        out.print("  managed      no (configured by hand, or not yet)")
        return
    out.print(f"  managed      yes: webhook {managed.webhook_id} ({managed.origin})")
    tested = f" at {_moment(managed.tested_at)}" if managed.tested_at else ""
    out.print(f"  test batch   {managed.test_status or 'not sent'}{tested}")
    out.print(f"  repair       {'on' if managed.repair else 'off'}")


def print_webhook(out: Console, webhook: WebhookSummary) -> None:
    last = _moment(webhook.last_event_at) if webhook.last_event_at else "never"
    out.print("webhook")
    out.print(f"  last event           {last}")
    out.print(f"  events stored        {webhook.events_stored:,}")
    out.print(f"  duplicates absorbed  {webhook.duplicates_absorbed:,}")
    out.print(f"  rejected             {webhook.rejected:,}")
    received = {name: n for name, n in webhook.events_last_24h.items() if n}
    if not received:
        out.print("  last 24 h            no events")
        return
    table = Table("table", "events, last 24 h")
    for name, count in sorted(received.items()):
        table.add_row(name, f"{count:,}")
    out.print(table)


def _moment(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def _duration(seconds: int) -> str:
    # The largest unit that divides it, as SYNC_INTERVAL and --interval are written.
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
