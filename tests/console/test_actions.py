"""A source page's actions, each through the real admin API: rotate the API key (a key
SendGrid refuses is said so and not stored), set the verification key, configure the Event
Webhook (SendGrid's test batch reaching the receiver), and check it (drift turns it red)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.conftest import api_key
from tests.console.conftest import ConsolePage, Stack
from tests.webhook_helpers import Signer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_rotate_the_key_set_the_verification_key_configure_and_check_the_webhook(
    stack: Stack, console: ConsolePage
) -> None:
    source = await stack.add_source("Actions")
    page = console.page
    await console.sign_in(stack.ingest_url)
    await page.get_by_role("link", name="Actions").click()
    await expect(page.get_by_role("heading", name="Actions", level=1)).to_be_visible()
    dialog = page.get_by_role("dialog")

    # Rotate the API key: SendGrid refuses the first one, which is not stored.
    refused = api_key()
    stack.account.revoked_keys.add(refused)
    await page.get_by_role("button", name="Rotate API key").click()
    await dialog.get_by_label("New API key").fill(refused)
    await dialog.get_by_role("button", name="Rotate key").click()
    await expect(dialog.locator(".form-error")).to_have_text(
        "SendGrid rejected this API key (401): check that it is whole and active"
    )
    await console.shot("rotate-key-refused")
    fingerprint = (await stack.http.get(f"/sources/{source['id']}")).json()["api_key_fingerprint"]
    assert fingerprint == source["api_key_fingerprint"]
    await dialog.get_by_label("New API key").fill(api_key())
    await dialog.get_by_role("button", name="Rotate key").click()
    await expect(dialog.locator(".dialog-result")).to_contain_text("Key stored")
    rotated = (await stack.http.get(f"/sources/{source['id']}")).json()["api_key_fingerprint"]
    assert rotated != source["api_key_fingerprint"]
    await expect(dialog.locator(".dialog-result")).to_contain_text(f"fingerprint {rotated}")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)

    # Set the verification key: a malformed one is refused with the reason.
    await page.get_by_role("button", name="Set verification key").click()
    await dialog.get_by_label("Verification key").fill("not a key")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator(".form-error")).to_contain_text("webhook_verification_key")
    await dialog.get_by_label("Verification key").fill(Signer().verification_key)
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator(".dialog-result")).to_have_text(
        "Key stored: signatures are verified from now on."
    )
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.locator("#webhook")).to_contain_text("yes: signatures are verified")

    # Configure the webhook: created in SendGrid, signed, and its test batch arrives.
    await page.get_by_role("button", name="Configure webhook").click()
    await dialog.get_by_role("button", name="Configure").click()
    await expect(dialog.locator(".dialog-result")).to_contain_text(
        "created, signed: yes, test batch: arrived."
    )
    await console.shot("configure-webhook")
    await dialog.get_by_role("button", name="Close").click()
    (webhook_id,) = stack.account.webhooks.webhooks
    await expect(page.locator("#webhook")).to_contain_text(f"yes, created (webhook {webhook_id})")
    # Check it now: nothing wrong, and the test batch, stored like any batch (its arrival is
    # noted before its commit), counts as events in the last hour.
    await stack.events_stored(source)
    await page.get_by_role("button", name="Check webhook").click()
    await expect(page.locator("#status")).to_have_text("Webhook check: nothing wrong.")
    await console.expect_health("green")
    # Then someone disables it in SendGrid, and the next check turns the source red.
    stack.account.webhooks.webhooks[webhook_id]["enabled"] = False
    await page.get_by_role("button", name="Check webhook").click()
    await expect(page.locator("#status")).to_have_text("Webhook check: disabled.")
    await console.expect_health("red")
    await expect(page.locator('#findings-table tr[data-finding="disabled"]')).to_be_visible()
    await expect(page.locator("#health-reasons")).to_contain_text("webhook disabled")
    await console.shot("webhook-disabled")
    assert console.unexpected_errors(422) == []
