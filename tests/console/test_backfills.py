"""A source's backfills from Email Logs in the console: the ledger shown as the `backfills`
table holds it (written here row by row, so every status and count can be set), followed every
2 s while one runs; and the Backfill action against the real sync service reading the fake
SendGrid's Email Logs, a 409 and a refusal shown in the service's words."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Locator, expect

from shared.tables import backfills
from tests.console.conftest import ConsolePage, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

LOCAL = ZoneInfo("Asia/Kolkata")  # the browser's time zone (conftest.py)
INTERRUPTED = "interrupted: the process stopped; the next backfill of this source resumes it"
HOSTILE = (
    'Email Logs refused (403): <img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
)
SHORTFALL = "2026-11-20T10:00:00+00:00 to 10:00:01: delivered, 1000 listed and more not shown"


def local(moment: datetime) -> str:
    """A moment as the console shows it, in the browser's time zone."""
    return moment.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


async def insert_backfill(stack: Stack, source: dict[str, Any], **values: Any) -> str:
    """A row of the `backfills` control table, as the sync service writes one."""
    row = {
        "id": str(uuid.uuid4()),
        "source_id": source["id"],
        "trigger": "manual",
        "heartbeat_at": datetime.now(UTC),
        "worker": "console-test",
        **values,
    }
    async with stack.ingest_app.state.engine.begin() as connection:
        await connection.execute(backfills.insert().values(row))
    return str(row["id"])


async def update_backfill(stack: Stack, backfill_id: str, **values: Any) -> None:
    async with stack.ingest_app.state.engine.begin() as connection:
        await connection.execute(
            backfills.update().where(backfills.c.id == backfill_id).values(**values)
        )


def counts(item: Locator, name: str) -> Locator:
    return item.locator(f'[data-count="{name}"] dd')


async def test_backfills_are_shown_newest_first_with_progress_counts_and_errors(
    stack: Stack, console: ConsolePage
) -> None:
    source = await stack.add_source("History")
    page = console.page
    await console.sign_in(stack.ingest_url)
    await page.get_by_role("link", name="History").click()
    section = page.locator("#backfills")
    await expect(section.get_by_role("heading", name="Backfills from Email Logs")).to_be_visible()
    # None yet: what a backfill is, and what it needs.
    await expect(section.locator("#backfills-empty")).to_contain_text(
        "It needs SendGrid's Email Logs, which keeps 30 days of events."
    )
    await expect(page.get_by_role("button", name="Backfill the last 30 days")).to_be_enabled()

    now = datetime.now(UTC).replace(microsecond=0)
    failed_start = now - timedelta(days=3)
    failed = await insert_backfill(
        stack, source, status="failed", since=failed_start - timedelta(days=30),
        until=failed_start, reached=failed_start - timedelta(days=30),
        started_at=failed_start, finished_at=failed_start + timedelta(seconds=4), error=HOSTILE,
    )  # fmt: skip
    initial_start = now - timedelta(days=2)
    initial = await insert_backfill(
        stack, source, trigger="initial", status="succeeded",
        since=initial_start - timedelta(days=30), until=initial_start, reached=initial_start,
        messages_listed=12_347, messages_read=12_345, messages_missing=2, events_stored=40_321,
        duplicates=1_002, rejected=3, started_at=initial_start,
        finished_at=initial_start + timedelta(hours=1, minutes=2, seconds=5),
    )  # fmt: skip
    repair_start = now - timedelta(days=1)
    repair = await insert_backfill(
        stack, source, trigger="repair", status="partial",
        since=repair_start - timedelta(days=2), until=repair_start, reached=repair_start,
        messages_listed=1_000, messages_read=1_000, messages_truncated=4, events_stored=37,
        duplicates=2_963, shortfall=SHORTFALL, repair_days=["2026-11-20"],
        started_at=repair_start, finished_at=repair_start + timedelta(minutes=3),
    )  # fmt: skip
    running_start = now - timedelta(minutes=10)
    since = running_start - timedelta(days=10)
    running = await insert_backfill(
        stack, source, status="running", since=since, until=running_start,
        reached=since + timedelta(days=4), messages_listed=500, messages_read=500,
        events_stored=1_500, started_at=running_start,
    )  # fmt: skip
    await page.reload()
    await expect(page.get_by_role("heading", name="History", level=1)).to_be_visible()

    items = section.locator("#backfills-list > li")
    await expect(items).to_have_count(4)
    shown = [await item.get_attribute("data-backfill-id") for item in await items.all()]
    assert shown == [running, repair, initial, failed]  # newest first

    # The running one: its range, how far it got as a progress bar, its counts so far.
    item = items.nth(0)
    await expect(item.locator("[data-status]")).to_have_text("↻ running")
    await expect(item.locator(".backfill-trigger")).to_have_text("manual")
    await expect(item.locator(".backfill-range")).to_have_text(
        f"Messages created {local(since)} → {local(running_start)}"
    )
    bar = item.get_by_role("progressbar")
    await expect(bar).to_have_attribute("aria-valuenow", "40")
    await expect(item.locator(".progress-words")).to_have_text(
        f"40.0 % read, up to {local(since + timedelta(days=4))}"
    )
    await expect(counts(item, "messages_read")).to_have_text("500")
    await expect(counts(item, "events_stored")).to_have_text("1,500")
    await expect(counts(item, "duplicates")).to_have_text("0")
    await expect(counts(item, "rejected")).to_have_text("0")
    await expect(item.locator('[data-count="messages_missing"]')).to_have_count(0)
    await expect(item.locator('[data-count="messages_truncated"]')).to_have_count(0)
    await expect(page.locator("#backfill")).to_have_text("Backfill running…")
    await expect(page.locator("#backfill")).to_be_disabled()

    # The repair: the days it repairs, what SendGrid could not list whole, the truncated.
    item = items.nth(1)
    await expect(item.locator("[data-status]")).to_have_text("◐ partial")
    await expect(item.locator(".backfill-trigger")).to_have_text("repair · took 3 min 0 s")
    await expect(item.locator(".backfill-repair")).to_have_text("Repairs 2026-11-20")
    await expect(item.locator(".backfill-shortfall")).to_have_text(f"Not listed whole: {SHORTFALL}")
    await expect(counts(item, "messages_truncated")).to_have_text("4")
    await expect(counts(item, "duplicates")).to_have_text("2,963")
    await expect(item.get_by_role("progressbar")).to_have_count(0)

    # The initial one (backfill_days): finished, its counts, the messages gone missing.
    item = items.nth(2)
    await expect(item.locator("[data-status]")).to_have_text("✓ succeeded")
    await expect(item.locator(".backfill-trigger")).to_have_text("initial · took 1 h 2 min")
    await expect(counts(item, "messages_read")).to_have_text("12,345")
    await expect(counts(item, "events_stored")).to_have_text("40,321")
    await expect(counts(item, "duplicates")).to_have_text("1,002")
    await expect(counts(item, "rejected")).to_have_text("3")
    await expect(counts(item, "messages_missing")).to_have_text("2")
    await expect(item.locator(".run-error-full")).to_have_count(0)

    # The failed one: its error, markup and all, is text.
    item = items.nth(3)
    await expect(item.locator("[data-status]")).to_have_text("✕ failed")
    await expect(item.locator(".run-error-full")).to_have_text(f"Error: {HOSTILE}")
    assert await item.locator("img, script").count() == 0
    assert await page.evaluate("window.pwned") is None
    await console.shot("backfills")

    # Followed every 2 s while it runs (the page's own refresh is every 30 s): it moves on...
    await update_backfill(
        stack, running, reached=since + timedelta(days=8), messages_read=900, events_stored=3_000
    )
    item = items.nth(0)
    await expect(item.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "80")
    await expect(counts(item, "events_stored")).to_have_text("3,000")
    # ...then its process stops: interrupted, where it got to, and why, shown.
    await update_backfill(stack, running, status="interrupted", error=INTERRUPTED)
    await expect(item.locator("[data-status]")).to_have_text("‖ interrupted")
    await expect(item.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "80")
    await expect(item.locator(".run-error-full")).to_have_text(f"Stopped: {INTERRUPTED}")
    await expect(page.locator("#backfill")).to_have_text("Backfill the last 30 days")
    await expect(page.locator("#backfill")).to_be_enabled()
    await console.shot("backfill-interrupted")
    assert console.unexpected_errors() == []


def message_events(n: int, created: datetime) -> list[dict[str, Any]]:
    """One message's events as the webhook posts them: processed, then delivered."""
    sg_message_id = f"console{n:04d}.recvd-fake-1-0.0"
    at = int(created.timestamp())
    common = {"email": f"reader{n}@example.com", "sg_message_id": sg_message_id,
              "smtp-id": f"<{sg_message_id}@ismtpd-fake>"}  # fmt: skip
    return [
        common | {"event": "processed", "sg_event_id": f"{sg_message_id}-p", "timestamp": at},
        common | {"event": "delivered", "sg_event_id": f"{sg_message_id}-d", "timestamp": at + 2,
                  "response": "250 OK"},
    ]  # fmt: skip


async def backfills_of(stack: Stack, source: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await stack.http.get(f"/sources/{source['id']}/backfills")
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()["backfills"]
    return listed


async def test_backfill_from_the_console_against_email_logs(
    stack: Stack, console: ConsolePage
) -> None:
    source = await stack.add_source("Email Logs", webhook=True)
    now = datetime.now(UTC).replace(microsecond=0)
    # Six messages of the last day in Email Logs; the webhook delivered two of them already.
    # One more, five days old, is outside the two days asked for.
    messages = [message_events(n, now - timedelta(hours=3 * (n + 1))) for n in range(6)]
    for n, events in enumerate(messages):
        created = now - timedelta(hours=3 * (n + 1))
        stack.account.email_logs.add(events[0]["sg_message_id"], events, created_at=created)
    old = message_events(99, now - timedelta(days=5))
    stack.account.email_logs.add(old[0]["sg_message_id"], old, created_at=now - timedelta(days=5))
    assert (await stack.send_batch(source, messages[0] + messages[1]))["stored"] == 4

    page = console.page
    await console.sign_in(stack.ingest_url)
    await page.get_by_role("link", name="Email Logs").click()
    await expect(page.locator("#backfills-empty")).to_be_visible()
    dialog = page.get_by_role("dialog")
    button = page.locator("#backfill")

    # The dialog says what a backfill does; a number of days out of range is refused.
    await button.click()
    await expect(dialog.get_by_role("heading", name="Backfill from Email Logs")).to_be_visible()
    days = dialog.get_by_label("Days back (1 to 30)")
    await expect(days).to_have_value("30")
    await days.fill("31")
    await dialog.get_by_role("button", name="Start backfill").click()
    await expect(dialog.locator(".form-error")).to_have_text(
        "Give a whole number of days from 1 to 30."
    )

    # Meanwhile a backfill started elsewhere (the CLI, another console) is running, its
    # Email Logs answers held: the console's is refused with the service's 409 message, and
    # the running one shows on the page.
    stack.email_logs_open.clear()
    elsewhere = await stack.http.post(f"/sources/{source['id']}/backfills", json={"days": 2})
    assert elsewhere.status_code == 202, elsewhere.text
    await days.fill("2")
    await dialog.get_by_role("button", name="Start backfill").click()
    await expect(dialog.locator(".form-error")).to_have_text(
        "a backfill of source 'Email Logs' is already running"
    )
    await dialog.get_by_role("button", name="Cancel").click()
    item = page.locator(f'#backfills-list li[data-backfill-id="{elsewhere.json()["backfill_id"]}"]')
    await expect(item).to_have_attribute("data-status", "running")
    await expect(item.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    await expect(button).to_have_text("Backfill running…")
    await expect(button).to_be_disabled()
    await console.shot("backfill-running")

    # Let Email Logs answer: it ends, followed by the page, with the counts the ledger holds.
    stack.email_logs_open.set()
    await expect(item).to_have_attribute("data-status", "succeeded")
    (done,) = await backfills_of(stack, source)
    assert (done["messages_read"], done["events_stored"], done["duplicates"]) == (6, 8, 4)
    await expect(counts(item, "messages_read")).to_have_text("6")
    await expect(counts(item, "events_stored")).to_have_text("8")
    await expect(counts(item, "duplicates")).to_have_text("4")
    await expect(counts(item, "rejected")).to_have_text("0")
    await expect(item.get_by_role("progressbar")).to_have_count(0)
    await expect(button).to_be_enabled()

    # Started from the console: the new one is shown, and stores nothing twice.
    await button.click()
    await dialog.get_by_label("Days back (1 to 30)").fill("2")
    await dialog.get_by_role("button", name="Start backfill").click()
    await expect(dialog.locator("#backfill-started")).to_be_visible()
    newest = (await backfills_of(stack, source))[0]
    assert newest["id"] != done["id"]
    assert newest["trigger"] == "manual"
    since, until = (datetime.fromisoformat(newest[k]) for k in ("since", "until"))
    # Two days, `until` rounded up to the next whole second (the listing's resolution).
    assert timedelta(days=2) <= until - since <= timedelta(days=2, seconds=1)
    await expect(dialog.locator("#backfill-started")).to_have_text(
        f"Backfill started: messages created {local(since)} → {local(until)}. "
        "It shows below under Backfills from Email Logs."
    )
    await dialog.get_by_role("button", name="Close").click()
    first = page.locator("#backfills-list > li").first
    await expect(first).to_have_attribute("data-backfill-id", newest["id"])
    await expect(first).to_have_attribute("data-status", "succeeded")
    await expect(counts(first, "events_stored")).to_have_text("0")
    await expect(counts(first, "duplicates")).to_have_text("12")
    await expect(page.locator("#backfills-list > li")).to_have_count(2)

    # An account without Email Logs: the backfill fails, saying so in the ledger's words.
    stack.account.email_logs.forbidden = True
    await button.click()
    await dialog.get_by_label("Days back (1 to 30)").fill("1")
    await dialog.get_by_role("button", name="Start backfill").click()
    await expect(dialog.locator("#backfill-started")).to_be_visible()
    await dialog.get_by_role("button", name="Close").click()
    first = page.locator("#backfills-list > li").first
    await expect(first).to_have_attribute("data-status", "failed")
    refused = (await backfills_of(stack, source))[0]
    assert refused["status"] == "failed"
    assert refused["error"]
    await expect(first.locator(".run-error-full")).to_have_text(f"Error: {refused['error']}")
    await console.shot("backfill-refused")
    assert console.unexpected_errors(409) == []
