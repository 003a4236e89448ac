"""The fake app (app.py) behind respx routes: what most sync tests talk to.

The product's own httpx client sends each request as in production; respx hands it to
`FakeAccount.answer`, which passes it to the app through httpx.ASGITransport, in process.
One respx route per app route (same method, same URL or path pattern), so a test can still
take over one path with `router.get(URL)` (respx reuses the route of the same pattern) and
fall back to the account's answer with `await account.answer(request)`.
"""

from __future__ import annotations

import re

import httpx
import respx
from fastapi.routing import APIRoute

from tests.fake_sendgrid.app import create_fake_sendgrid
from tests.fake_sendgrid.payloads import API
from tests.fake_sendgrid.state import FakeAccountState

# Where export files are, as SendGrid's are on S3: another host, which must not get the key.
DOWNLOADS_HOST = "sendgrid-exports.s3.amazonaws.com"
DOWNLOADS = f"https://{DOWNLOADS_HOST}/downloads"
# Answered by tests/conftest.py's `sendgrid` router with the scopes a test chooses.
_NOT_ROUTED = {"/v3/scopes"}
# respx passes a regex's named groups to the side effect as arguments; `answer` takes none.
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


class FakeAccount(FakeAccountState):
    """An account a test fills and changes between syncs; `install` routes SendGrid's API
    (at `base_url`) and the downloads host of a respx router to its app."""

    def __init__(self, base_url: str = API) -> None:
        super().__init__(downloads_url=DOWNLOADS)
        self.base_url = base_url
        self.app = create_fake_sendgrid(self)
        self._transport = httpx.ASGITransport(app=self.app)

    def install(self, router: respx.Router) -> None:
        for route in self.app.routes:
            if not isinstance(route, APIRoute) or not route.path.startswith("/v3/"):
                continue
            if route.path in _NOT_ROUTED:
                continue
            for method in sorted(route.methods or ()):
                if "{" in route.path:
                    pattern = _NAMED_GROUP.sub("(?:", route.path_regex.pattern)
                    mocked = router.request(method, path__regex=pattern)
                else:
                    mocked = router.request(method, f"{self.base_url}{route.path}")
                mocked.mock(side_effect=self.answer)
        router.get(host=DOWNLOADS_HOST).mock(side_effect=self.answer)

    async def answer(self, request: httpx.Request) -> httpx.Response:
        """The app's answer to `request`, read whole (a test may look at its content)."""
        response = await self._transport.handle_async_request(request)
        await response.aread()
        return response
