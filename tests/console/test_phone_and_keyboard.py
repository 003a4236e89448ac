"""The console at a phone's width, used with the keyboard alone: sign in, open a source, start
a sync, open its run, open and close a dialog, and never a page wider than the screen.

On SQLite only: what is checked is the page's layout and focus, which the database behind
the API does not change (every other console test runs on both backends)."""

from __future__ import annotations

import pytest
from playwright.async_api import ViewportSize, expect

from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import ConsolePage, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def tab_to(console: ConsolePage, selector: str, presses: int = 40) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(presses):
        await console.page.keyboard.press("Tab")
        if await console.page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} was not reached with Tab in {presses} presses")


async def fits_the_screen(console: ConsolePage) -> bool:
    fits: bool = await console.page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth"
    )
    return fits


async def test_at_a_phones_width_with_the_keyboard_alone(
    stack: Stack, console: ConsolePage
) -> None:
    source = await stack.add_source("Pocket", webhook=True)
    await stack.send_batch(
        source,
        [{"event": "delivered", "email": "a@example.com", "timestamp": 1700000000,
          "sg_event_id": "pocket-1", "response": "250 OK"}],
    )  # fmt: skip
    page = console.page
    await page.set_viewport_size(PHONE)
    await page.goto(f"{stack.ingest_url}/console/")

    # The token field has the focus: type, Enter.
    await expect(page.get_by_label("Admin token")).to_be_focused()
    await page.keyboard.type(ADMIN_TOKEN)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Sources", level=1)).to_be_focused()
    await expect(page.locator("#sources-table [data-health]")).to_have_attribute(
        "data-health", "green"
    )
    assert await fits_the_screen(console)
    await console.shot("phone-sources")

    await tab_to(console, "a.source-link")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Pocket", level=1)).to_be_focused()
    await expect(page.locator("#hourly-canvas")).to_be_visible()

    # A dialog opens from the keyboard, Escape closes it and gives the focus back.
    await tab_to(console, "#rotate-key")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog")).to_be_visible()
    await expect(page.get_by_role("dialog").get_by_label("New API key")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await expect(page.locator("#rotate-key")).to_be_focused()

    # Sync now from the keyboard; the run opens on Enter and lists its collections.
    await tab_to(console, "#sync-now")
    await page.keyboard.press("Enter")
    run = page.locator("#runs-list details.run").first
    await expect(run).to_have_attribute("data-status", "succeeded", timeout=20_000)
    await run.evaluate("details => { details.open = false; }")
    await tab_to(console, "#runs-list details.run > summary")
    await page.keyboard.press("Enter")
    await expect(run.locator("tr[data-collection]").first).to_be_visible()
    assert await fits_the_screen(console)
    await console.shot("phone-source")
    assert console.unexpected_errors() == []
