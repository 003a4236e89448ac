"""The console's browser tests: the real ingest and sync services, each served by uvicorn on
a port of 127.0.0.1 in this process, on the test's SQLite file or PostgreSQL database;
SendGrid's API answered over HTTP by the fake app (tests/fake_sendgrid/) from an account the
test changes; and Debian's Chromium, headless, driven by Playwright.

The tests and these fixtures share the session's event loop (`loop_scope="session"`), so
one Chromium serves every test while each test's services run in the loop that drives them.
The sync service runs without its schedule (`create_app(schedule=False)`): runs start only
when a test or the console asks, so what the console shows is what the test did. SendGrid's
Email Logs answers can be held (`Stack.email_logs_open`), so a backfill stays running for as
long as a test needs to look at it.

Screenshots of every page go to `<pytest's tmp dir>/console-screenshots/`, printed at the end
of the run, for a reviewer to look at.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from ingest_service.app import create_app as create_ingest_app
from shared.settings import Settings
from sync_service.app import create_app as create_sync_app
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SCOPES, api_key
from tests.fake_sendgrid.app import create_fake_sendgrid
from tests.fake_sendgrid.state import FakeAccountState, generated_account
from tests.fake_sendgrid.webhooks import EVENT_TOGGLES
from tests.served import listening_socket, served, url_of
from tests.webhook_helpers import body_of

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's services,
# which this machine's closed network refuses over and over.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every wait in these tests is bounded; a console that never shows what it should fails.
WAIT_MS = 15_000
_SHOTS: list[Path] = []


@dataclass
class Stack:
    """The running services and what a test needs to drive them."""

    settings: Settings
    ingest_url: str
    ingest_app: FastAPI
    account: FakeAccountState
    http: httpx.AsyncClient  # carries the admin token
    # Cleared, every Email Logs request waits until it is set again: a backfill then stays
    # running (its first listing unanswered) until the test lets it go on.
    email_logs_open: asyncio.Event
    keys: dict[str, str] = field(default_factory=dict)  # source id -> its API key
    webhook_ids: dict[str, str] = field(default_factory=dict)  # source id -> fake webhook id

    async def add_source(self, name: str, *, webhook: bool = False) -> dict[str, Any]:
        """Register a source; with `webhook`, its Event Webhook is set up by hand as a user
        would in SendGrid's UI (enabled, every event, signed) and its key stored."""
        key = api_key()
        response = await self.http.post("/sources", json={"name": name, "api_key": key})
        assert response.status_code == 201, response.text
        source: dict[str, Any] = response.json()
        self.keys[source["id"]] = key
        if webhook:
            toggles = dict.fromkeys((*EVENT_TOGGLES, "account_status_change"), True)
            made = self.account.webhooks.add(
                source["webhook_url"], signed=True, enabled=True, **toggles
            )
            self.webhook_ids[source["id"]] = made["id"]
            key_set = await self.http.patch(
                f"/sources/{source['id']}", json={"webhook_verification_key": made["public_key"]}
            )
            assert key_set.status_code == 200, key_set.text
        return source

    async def send_batch(self, source: dict[str, Any], events: list[dict[str, Any]]) -> Any:
        """POST one batch as SendGrid does: framed, and signed by the source's webhook."""
        body = body_of(events)
        webhook_id = self.webhook_ids.get(source["id"])
        headers = self.account.webhooks.signed_headers(webhook_id, body) if webhook_id else {}
        response = await self.http.post(source["webhook_url"], content=body, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def events_stored(self, source: dict[str, Any]) -> None:
        """Wait until the source has stored an event."""
        for _ in range(200):
            summary = (await self.http.get(f"/sources/{source['id']}")).json()["webhook"]
            if summary["last_event_at"] is not None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no event of {source['name']} was stored")

    async def sync(self, source: dict[str, Any]) -> dict[str, Any]:
        """Start a sync (through the relay) and wait for it to finish."""
        started = await self.http.post(f"/sources/{source['id']}/syncs")
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        for _ in range(300):
            runs = (await self.http.get(f"/sources/{source['id']}/syncs")).json()["runs"]
            run: dict[str, Any] = next(r for r in runs if r["id"] == run_id)
            if run["status"] != "running":
                return run
            await asyncio.sleep(0.05)
        raise AssertionError(f"the run {run_id} did not finish")


@pytest_asyncio.fixture(loop_scope="session")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    sockets = {name: listening_socket() for name in ("sendgrid", "ingest", "sync")}
    urls = {name: url_of(sock) for name, sock in sockets.items()}
    served_settings = settings.model_copy(
        update={
            "PUBLIC_URL": urls["ingest"],
            "SENDGRID_API_URL": urls["sendgrid"],
            "SYNC_URL": urls["sync"],
        }
    )
    # One status poll answered "pending": a run lasts a couple of seconds, long enough for
    # the console to show it running.
    account = generated_account(
        contacts=240, lists=4, segments=3, single_sends=3, export_files=1, polls_before_ready=1
    )
    # A full-access key: the webhook can be configured, and silence looked for.
    account.scopes = [*account.scopes, "stats.read", *WEBHOOK_SCOPES]

    async def deliver(url: str, body: bytes, headers: dict[str, str]) -> None:
        # SendGrid's test batch, posted to the receiver as SendGrid would.
        async with httpx.AsyncClient() as client:
            await client.post(url, content=body, headers=headers)

    account.webhooks.deliver = deliver
    fake_sendgrid = create_fake_sendgrid(account)
    email_logs_open = asyncio.Event()
    email_logs_open.set()

    @fake_sendgrid.middleware("http")
    async def hold_email_logs(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/v3/logs"):
            await email_logs_open.wait()
        return await call_next(request)

    ingest_app = create_ingest_app(served_settings)
    async with (
        served(fake_sendgrid, sockets["sendgrid"]),
        served(create_sync_app(served_settings, schedule=False), sockets["sync"]),
        served(ingest_app, sockets["ingest"]),
        httpx.AsyncClient(
            base_url=urls["ingest"], headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as http,
    ):
        yield Stack(served_settings, urls["ingest"], ingest_app, account, http, email_logs_open)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium package")
    return CHROMIUM


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """One Chromium for the session (a launch takes a second or two); each test has its own
    context, with its own storage. A fresh profile: Playwright makes a temporary user-data
    dir per launch."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class ConsolePage:
    """A page of the console with what it logged: no error may go unnoticed (a refused
    script or style under the Content-Security-Policy is logged as one)."""

    page: Page
    shots: Path
    errors: list[str] = field(default_factory=list)

    def watch(self) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(message.text)

        self.page.on("console", on_console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    async def sign_in(self, base_url: str) -> None:
        await self.page.goto(f"{base_url}/console/")
        await self.page.get_by_label("Admin token").fill(ADMIN_TOKEN)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("heading", name="Sources", level=1)).to_be_visible()

    async def painted(self, canvas_id: str, rgb: tuple[int, int, int]) -> int:
        """How many pixels of the canvas have exactly this colour: a series drawn, not just
        the axes."""
        count: int = await self.page.evaluate(
            """([id, [r, g, b]]) => {
                const canvas = document.getElementById(id);
                const {width, height} = canvas;
                const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
                let n = 0;
                for (let i = 0; i < data.length; i += 4) {
                    const [pr, pg, pb, pa] = data.slice(i, i + 4);
                    if (pr === r && pg === g && pb === b && pa === 255) n++;
                }
                return n;
            }""",
            [canvas_id, list(rgb)],
        )
        return count

    async def expect_health(self, level: str) -> None:
        """The source page's badge says `level` (green, amber or red)."""
        badge = self.page.locator(".head-badge [data-health]")
        await expect(badge).to_have_attribute("data-health", level)

    async def shot(self, name: str, *, full_page: bool = True) -> Path:
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        _SHOTS.append(path)
        return path

    def unexpected_errors(self, *allowed_statuses: int) -> list[str]:
        """Errors other than the browser's line for an API answer the test caused itself."""
        expected = tuple(f"status of {status}" for status in allowed_statuses)
        return [e for e in self.errors if not (expected and any(s in e for s in expected))]


@pytest.fixture
def screenshots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    name: str = request.node.name
    folder = tmp_path_factory.getbasetemp() / "console-screenshots" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest_asyncio.fixture(loop_scope="session")
async def console(browser: Browser, screenshots: Path) -> AsyncIterator[ConsolePage]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800},
        # Not UTC, and not on the hour, so the local hours of the table view are checked.
        timezone_id="Asia/Kolkata",
        locale="en-US",
    )
    context.set_default_timeout(WAIT_MS)
    page = ConsolePage(await context.new_page(), screenshots)
    page.watch()
    try:
        yield page
    finally:
        await context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHOTS:
        folder = _SHOTS[0].parent.parent
        terminalreporter.write_line(f"console screenshots ({len(_SHOTS)}): {folder}")
