"""The console, served at /console/: static files (ingest_service/console/) the browser runs
against this service's own API, with the admin token it was given.

The files hold no data and no secret; everything they show comes from the admin API, so
they need no auth of their own. Every answer carries a strict Content-Security-Policy (only
this origin's own scripts, styles and API; no inline script, no frames, no form posts), so
a payload shown in the console (a rejected event is anything a sender posted) can never run
as script even if it slipped past the console's text-only rendering.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
MOUNT = "/console"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Revalidated on every load (an ETag answers 304), so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """/console/ serves index.html; /console is redirected there by the router."""
    app.mount(MOUNT, ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
