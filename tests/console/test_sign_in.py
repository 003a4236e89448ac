"""Signing in and out of the console, and what every console answer carries."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from ingest_service.console_site import CONTENT_SECURITY_POLICY
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import ConsolePage, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_wrong_token_is_refused_the_right_one_kept_for_the_tab_and_forgotten_on_sign_out(
    stack: Stack, console: ConsolePage
) -> None:
    page = console.page
    answer = await page.goto(f"{stack.ingest_url}/console/")
    assert answer is not None
    assert answer.status == 200
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await console.shot("sign-in")

    await page.get_by_label("Admin token").fill("not-the-admin-token-at-all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_have_text(
        "Not signed in: the admin token is wrong."
    )
    await console.shot("sign-in-wrong-token")
    assert await page.evaluate("sessionStorage.length") == 0

    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Sources", level=1)).to_be_visible()
    await expect(page.get_by_text("No source yet")).to_be_visible()
    # Kept for this tab: a reload stays signed in; never in a cookie.
    await page.reload()
    await expect(page.get_by_role("heading", name="Sources", level=1)).to_be_visible()
    assert await page.context.cookies() == []

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert console.unexpected_errors(401) == []
