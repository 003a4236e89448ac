"""One source's view of SendGrid over the service's shared `httpx.AsyncClient`.

Auth, the base URL, rate-limit state and retries are per source (SendGrid's limits are per
account), while the connection pool is shared by every source for the service's lifetime.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from sync_service.errors import (
    AuthRejected,
    ExportFailed,
    RateLimited,
    RequestRejected,
    RetryableAPIError,
    SendGridError,
    SendGridForbidden,
    SendGridNotFound,
)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
QueryParams = Mapping[str, str | int]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before a request's failure becomes the collection's failure."""

    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    # SendGrid's windows are short (per minute in practice); a reset further away than this is
    # waited for only this long before the next attempt.
    max_rate_limit_wait: float = 120.0


def origin_of(url: str) -> tuple[str, str]:
    """Scheme and host (with port) of a URL, lower-cased, for same-host checks."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _error_detail(response: httpx.Response) -> str:
    """SendGrid's `{"errors":[{"message":...}]}` (or segments' `{"error":...}`) as one line."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            messages = [str(e.get("message")) for e in errors if isinstance(e, dict)]
            return "; ".join(m for m in messages if m and m != "None")
        if isinstance(body.get("error"), str):
            return str(body["error"])
    return ""


def _header_float(response: httpx.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class SendGridClient:
    """GET/POST JSON against one account, honouring its rate limits and retrying blips."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        max_in_flight: int = 4,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._origin = origin_of(self.base_url)
        self._auth = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        # Unix time before which the account has no requests left (X-RateLimit-Remaining: 0).
        # Every request waits for it, whichever collection's request saw the header.
        self._resume_at: float | None = None
        # Requests of this source in flight at once (SYNC_CONCURRENCY): its collections are
        # read concurrently, and a download holds its slot until it is read to the end.
        self._in_flight = asyncio.Semaphore(max_in_flight)

    def url_for(self, path_or_url: str) -> str:
        return urljoin(self.base_url + "/", path_or_url)

    def is_on_host(self, url: str) -> bool:
        return origin_of(url) == self._origin

    async def get_json(self, path_or_url: str, params: QueryParams | None = None) -> Any:
        return await self._request_json("GET", path_or_url, params=params)

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self._request_json("POST", path, body=body)

    @asynccontextmanager
    async def open_download(self, url: str) -> AsyncIterator[httpx.Response]:
        """Stream a pre-signed export file. The API key must not travel to that host."""
        response: httpx.Response | None = None
        async for attempt in self._retrying():
            with attempt:
                request = self._http.build_request("GET", url)
                # A pre-signed S3 URL rejects a second credential, and the key is not S3's
                # business; strip one even if the shared client was built with a default.
                request.headers.pop("Authorization", None)
                await self._in_flight.acquire()
                try:
                    response = await self._send(request, stream=True)
                except BaseException:
                    self._in_flight.release()
                    raise
                if response.status_code >= 500:
                    await response.aclose()
                    self._in_flight.release()
                    raise RetryableAPIError(
                        f"export download answered {response.status_code} after retries"
                    )
        assert response is not None  # the loop either set it or raised
        try:
            if response.status_code != 200:
                await response.aread()
                raise ExportFailed(
                    f"downloading an export file failed with HTTP {response.status_code}"
                    f" (the link may have expired): {response.text[:200].strip()}"
                )
            yield response
        finally:
            await response.aclose()
            self._in_flight.release()

    async def _request_json(
        self,
        method: str,
        path_or_url: str,
        *,
        params: QueryParams | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        url = self.url_for(path_or_url)
        response: httpx.Response | None = None
        async for attempt in self._retrying():
            with attempt:
                await self._wait_for_reset()
                request = self._http.build_request(
                    method, url, params=params, json=body, headers=self._auth
                )
                async with self._in_flight:
                    response = await self._send(request, stream=False)
                self._note_rate_limit(response)
                self._raise_for_status(response, url)
        assert response is not None  # the loop either set it or raised
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise SendGridError(
                f"{urlsplit(url).path} answered {response.status_code} with a body that is not JSON"
            ) from None

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception_type((RetryableAPIError, RateLimited)),
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait_before_retry,
            sleep=self.sleep,
            reraise=True,
        )

    def _wait_before_retry(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.reset_at is not None:
            # SendGrid keeps the endpoint blocked until the reset; asking earlier only burns
            # an attempt. At least one second, since the reset header has one-second precision.
            # This wait replaces the pre-request one the 429's own headers would cause.
            self._resume_at = None
            ahead = error.reset_at - self.clock()
            return min(max(ahead, 1.0), self.policy.max_rate_limit_wait)
        backoff = wait_exponential_jitter(
            initial=self.policy.backoff_initial,
            max=self.policy.backoff_max,
            jitter=self.policy.backoff_initial,
        )
        return float(backoff(state))

    async def _wait_for_reset(self) -> None:
        # Every request in flight meanwhile waits for the same reset; once waited for (up to
        # max_rate_limit_wait), it is forgotten, and a 429 says if it was too early.
        resume_at = self._resume_at
        if resume_at is None:
            return
        ahead = resume_at - self.clock()
        if ahead > 0:
            await self.sleep(min(ahead, self.policy.max_rate_limit_wait))
        if self._resume_at == resume_at:
            self._resume_at = None

    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = _header_float(response, "X-RateLimit-Remaining")
        reset = _header_float(response, "X-RateLimit-Reset")
        if remaining is not None and remaining <= 0 and reset is not None:
            self._resume_at = reset
        elif remaining is not None and remaining > 0:
            self._resume_at = None

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        path = request.url.path
        try:
            return await self._http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise RetryableAPIError(f"{path} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise RetryableAPIError(f"{path} failed to connect: {exc!r}") from exc

    def _raise_for_status(self, response: httpx.Response, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _error_detail(response)
        if status == 401:
            raise AuthRejected(detail)
        if status == 403:
            raise SendGridForbidden(url, detail)
        if status == 404:
            raise SendGridNotFound(
                f"{urlsplit(url).path} not found" + (f": {detail}" if detail else "")
            )
        if status == 429:
            raise RateLimited(url, _header_float(response, "X-RateLimit-Reset"))
        if status >= 500:
            said = f": {detail}" if detail else ""
            raise RetryableAPIError(f"{urlsplit(url).path} answered {status}{said}")
        raise RequestRejected(status, url, detail)
