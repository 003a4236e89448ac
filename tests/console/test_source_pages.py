"""The sources page and a source's page, in a real browser against the real services: the
health badges, the hourly chart and its table (checked against the database), the rejected
events, Sync now watched from running to finished, and a failing key shown red."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.async_api import expect

from shared.events import EVENT_TYPES
from shared.tables import source_tables
from tests.console.conftest import ConsolePage, Stack
from tests.webhook_helpers import sample_events

# The colour of the first series of each chart (charts.js): a drawn series has its pixels.
FIRST_SERIES_RGB = (0x00, 0x72, 0xB2)
EVENT_OF_TABLE = {table: event for event, (table, _) in EVENT_TYPES.items()}

pytestmark = pytest.mark.asyncio(loop_scope="session")


def events(copies: int) -> list[dict[str, Any]]:
    """SendGrid's documented events, `copies` times over, each with its own id."""
    batch = []
    for copy in range(copies):
        for n, event in enumerate(sample_events()):
            batch.append(event | {"sg_event_id": f"console-{copy}-{n}"})
    return batch


async def spread_over_hours(stack: Stack, schema: str) -> Counter[tuple[datetime, str]]:
    """Move most stored events back by up to 28 hours (they all arrived just now), so the
    chart has hours to show; returns what the database then holds per UTC hour and type."""
    engine = stack.ingest_app.state.engine
    expected: Counter[tuple[datetime, str]] = Counter()
    async with engine.begin() as connection:
        for name, table in source_tables(schema).events.items():
            query = sa.select(table.c.id, table.c.received_at).order_by(table.c.id)
            for j, (event_id, received_at) in enumerate(await connection.execute(query)):
                if j % 4:
                    await connection.execute(
                        table.update()
                        .where(table.c.id == event_id)
                        .values(received_at=received_at - timedelta(hours=9 * (j % 4)))
                    )
            for (received_at,) in await connection.execute(sa.select(table.c.received_at)):
                hour = received_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
                expected[hour, EVENT_OF_TABLE[name]] += 1
    return expected


async def table_view(console: ConsolePage) -> dict[str, dict[str, str]]:
    """The hourly table view as shown: the hour's ISO start -> event type -> the cell text."""
    shown: dict[str, dict[str, str]] = await console.page.evaluate(
        """() => {
            const rows = [...document.querySelectorAll("#hourly-table tbody tr")];
            const cells = (row) => [...row.querySelectorAll("td[data-event]")]
                .map((cell) => [cell.dataset.event, cell.textContent]);
            const hour = (row) => [row.dataset.hour, Object.fromEntries(cells(row))];
            return Object.fromEntries(rows.map(hour));
        }"""
    )
    return shown


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


async def test_a_source_page_shows_what_the_database_holds_and_follows_a_sync(
    stack: Stack, console: ConsolePage
) -> None:
    flowing = await stack.add_source("Flowing", webhook=True)
    answer = await stack.send_batch(flowing, events(3))
    assert answer == {"stored": 60, "duplicates": 0, "rejected": 0}
    # A hostile payload: shown as text, never run.
    script = "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>"
    bad = {"event": "teleported", "email": script, "timestamp": 1700000000}
    assert (await stack.send_batch(flowing, [bad]))["rejected"] == 1
    expected = await spread_over_hours(stack, flowing["schema"])
    page = console.page

    await console.sign_in(stack.ingest_url)
    await page.get_by_role("link", name="Flowing").click()
    await expect(page.get_by_role("heading", name="Flowing", level=1)).to_be_visible()
    await expect(page.locator(".head-badge [data-health]")).to_have_attribute(
        "data-health", "green"
    )

    # The hourly chart is drawn, and its table view holds the database's exact counts.
    await expect(page.locator("#hourly-canvas")).to_be_visible()
    assert await console.painted("hourly-canvas", FIRST_SERIES_RGB) > 100
    await page.locator("#hourly-table-view > summary").click()
    await expect(page.locator("#hourly-table")).to_be_visible()
    shown = await table_view(console)
    assert len(shown) == 48
    hours_with_events = {hour for hour, _ in expected}
    assert len(hours_with_events) == 4
    for iso, cells in shown.items():
        hour = datetime.fromisoformat(iso)
        for event, text in cells.items():
            assert number(text) == expected.get((hour, event), 0), (iso, event)
    assert {(datetime.fromisoformat(i), e) for i, c in shown.items() for e in c} >= set(expected)
    # Hours are shown in the browser's time zone (+05:30 here).
    newest = max(hours_with_events)
    local = newest.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M")
    row = page.locator(f'#hourly-table tr[data-hour="{newest.isoformat().replace("+00:00", "Z")}"]')
    await expect(row.locator("th")).to_have_text(local)

    # The rejected event, with its reason in the database's words and its payload.
    engine = stack.ingest_app.state.engine
    async with engine.connect() as connection:
        rejected = source_tables(flowing["schema"]).rejected
        reason = await connection.scalar(sa.select(rejected.c.reason))
    item = page.locator("#rejected-list li").first
    await expect(item.locator(".rejected-reason")).to_have_text(f"Reason: {reason}")
    await item.get_by_text("Payload").click()
    await expect(item.locator("pre.payload")).to_contain_text('"event":"teleported"')
    await expect(item.locator("pre.payload")).to_contain_text(script)
    assert await page.evaluate("window.pwned") is None
    assert await item.locator("pre.payload img, pre.payload script").count() == 0
    await console.shot("source-flowing-before-sync")

    # Sync now: the run appears running, then finishes with its collections.
    await page.get_by_role("button", name="Sync now").click()
    running = page.locator("#runs-list details.run").first
    await expect(running).to_have_attribute("data-status", "running")
    await expect(page.get_by_role("button", name="Sync running…")).to_be_disabled()
    await console.shot("source-flowing-sync-running")
    await expect(running).to_have_attribute("data-status", "succeeded")
    runs = (await stack.http.get(f"/sources/{flowing['id']}/syncs")).json()["runs"]
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "succeeded"
    rows = running.locator("tr[data-collection]")
    await expect(rows).to_have_count(len(run["collections"]))
    for collection in run["collections"]:
        shown_row = running.locator(f'tr[data-collection="{collection["collection"]}"]')
        await expect(shown_row.locator("td.message")).to_have_text(collection["message"] or "")
        await expect(shown_row.locator("[data-status]")).to_have_attribute(
            "data-status", collection["status"]
        )
    await expect(page.get_by_role("button", name="Sync now")).to_be_enabled()
    assert await console.painted("collections-canvas", FIRST_SERIES_RGB) > 10
    await page.locator("#collections-table-view > summary").click()
    recipients = next(c for c in run["collections"] if c["collection"] == "recipients")
    await expect(
        page.locator(
            f'#collections-table tr[data-run="{run["id"]}"] td[data-collection="recipients"]'
        )
    ).to_have_text(f"{recipients['rows_upserted']:,}")
    # The webhook check after the run found the hand-made webhook right: still green.
    await expect(page.locator(".head-badge [data-health]")).to_have_attribute(
        "data-health", "green"
    )
    await expect(page.locator("#webhook")).to_contain_text("The last check found nothing wrong.")
    await console.shot("source-flowing-after-sync")
    # What the README shows (docs/console.png): the page as it opens at 1280 x 800.
    await page.locator("#hourly-table-view > summary").click()
    await page.evaluate("window.scrollTo(0, 0); document.getElementById('status').className = ''")
    await console.shot("source-flowing-1280x800", full_page=False)
    assert console.unexpected_errors() == []


async def test_the_sources_page_shows_each_source_health_and_a_failing_key_red(
    stack: Stack, console: ConsolePage
) -> None:
    flowing = await stack.add_source("Flowing", webhook=True)
    await stack.send_batch(flowing, events(1))
    revoked = await stack.add_source("Revoked key")
    quiet = await stack.add_source("Quiet")
    stack.account.revoked_keys.add(stack.keys[revoked["id"]])
    run = await stack.sync(revoked)
    assert run["status"] == "failed"
    page = console.page

    await console.sign_in(stack.ingest_url)
    table = page.locator("#sources-table")
    await expect(table.locator("tbody tr")).to_have_count(3)

    def row(source: dict[str, Any]) -> Any:
        return table.locator(f'tr[data-source-id="{source["id"]}"]')

    await expect(row(flowing).locator("[data-health]")).to_have_attribute("data-health", "green")
    await expect(row(flowing).locator("td").nth(2)).to_have_text("20")  # events in 24 h
    await expect(row(revoked).locator("[data-health]")).to_have_attribute("data-health", "red")
    await expect(row(revoked).locator(".reason")).to_contain_text("SendGrid rejected the API key")
    await expect(row(revoked).locator("[data-status]")).to_have_attribute("data-status", "failed")
    await expect(row(quiet).locator("[data-health]")).to_have_attribute("data-health", "amber")
    await expect(row(quiet).locator(".reason")).to_have_text(
        "no event received yet, and the webhook is not watched: configure it, or set its "
        "verification key"
    )
    # No completeness column until a source's answer carries it.
    await expect(table.locator("thead th")).to_have_count(5)
    await console.shot("sources")

    await row(revoked).get_by_role("link").click()
    await console.expect_health("red")
    failed = page.locator("#runs-list details.run").first
    await expect(failed).to_have_attribute("data-status", "failed")
    await expect(failed.locator(".run-error")).to_have_text(run["error"])
    await console.shot("source-revoked-key")
    # The page refreshes itself; nothing logged an error meanwhile.
    await asyncio.sleep(0)
    assert console.unexpected_errors() == []
