"""Every contact of an account, through SendGrid's export job: start, poll, download.

`GET /v3/marketing/contacts` returns at most 50 contacts and search stops at 50 matches, so
the export job is the only way to read all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from sync_service.client import SendGridClient
from sync_service.errors import ExportFailed, SendGridError
from sync_service.export_files import CsvBatch, iterate_csv_value_batches

EXPORTS_PATH = "/v3/marketing/contacts/exports"


@dataclass(frozen=True)
class ExportPolicy:
    """How patiently to wait for SendGrid to build an export."""

    poll_initial: float = 2.0
    poll_max: float = 30.0
    # Large accounts take minutes; an hour without `ready` means the job is stuck.
    max_wait: float = 3600.0


@dataclass(frozen=True)
class ExportJob:
    id: str
    urls: list[str]


class _StillPending(Exception):
    """Internal: the job is not ready yet, so poll again."""


async def start_contacts_export(client: SendGridClient) -> str:
    """Ask for a CSV export of all contacts; returns the job id."""
    body = await client.post_json(EXPORTS_PATH, {"file_type": "csv"})
    export_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(export_id, str) or not export_id:
        raise SendGridError(f"{EXPORTS_PATH} accepted the export but returned no job id")
    return export_id


def _job_from(body: Any, export_id: str) -> ExportJob | None:
    """The finished job, None while pending; raises if SendGrid gave up on it."""
    if not isinstance(body, dict):
        raise SendGridError(f"{EXPORTS_PATH}/{export_id} did not answer with a JSON object")
    status = body.get("status")
    if status == "pending":
        return None
    if status != "ready":
        message = body.get("message") or "no reason given"
        raise ExportFailed(f"SendGrid's contacts export ended with status {status!r}: {message}")
    urls = body.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise SendGridError(f"{EXPORTS_PATH}/{export_id} is ready but its urls are not a list")
    return ExportJob(export_id, list(urls))


async def wait_for_export(
    client: SendGridClient, export_id: str, policy: ExportPolicy | None = None
) -> ExportJob:
    """Poll the job with growing pauses until it is ready, fails, or `max_wait` is spent."""
    policy = policy or ExportPolicy()

    def waited_long_enough(state: RetryCallState) -> bool:
        return state.idle_for >= policy.max_wait

    polling = AsyncRetrying(
        retry=retry_if_exception_type(_StillPending),
        wait=wait_exponential(multiplier=policy.poll_initial, max=policy.poll_max),
        stop=waited_long_enough,
        sleep=client.sleep,
        reraise=True,
    )
    try:
        async for attempt in polling:
            with attempt:
                job = _job_from(await client.get_json(f"{EXPORTS_PATH}/{export_id}"), export_id)
                if job is None:
                    raise _StillPending
                return job
    except _StillPending:
        pass
    raise ExportFailed(
        f"SendGrid's contacts export {export_id} was still pending after "
        f"{policy.max_wait:.0f} s of polling"
    )


async def iterate_export_batches(client: SendGridClient, job: ExportJob) -> AsyncIterator[CsvBatch]:
    """Records of every file of a ready job, in order, one file open at a time, a batch per
    chunk."""
    for url in job.urls:
        async with client.open_download(url) as response:
            try:
                async for batch in iterate_csv_value_batches(response.aiter_bytes()):
                    yield batch
            except httpx.TransportError as exc:
                # A timeout or a dropped connection while the file streams in.
                raise ExportFailed(
                    f"downloading an export file broke off ({type(exc).__name__}: {exc})"
                ) from exc


async def iterate_exported_batches(
    client: SendGridClient,
    policy: ExportPolicy | None = None,
    started: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[CsvBatch]:
    """Start an export of all contacts, wait for it, and stream its records a chunk at a time.
    `started` is awaited once the job is started, before it is waited for: the caller's time
    to do what can be done while SendGrid builds the files."""
    export_id = await start_contacts_export(client)
    if started is not None:
        await started()
    job = await wait_for_export(client, export_id, policy)
    async for batch in iterate_export_batches(client, job):
        yield batch
