"""The Event Webhook endpoint: authenticate, read, verify, parse, then wait for the commit.

Order matters: the token is checked before the body is read, the signature is checked on
the raw bytes before any parsing, and the answer is 2xx only once the events are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request
from pydantic import BaseModel

from ingest_service.parsers import ParserPool
from ingest_service.writer import EventWriter, WriteFailed
from shared.errors import AppError, Forbidden, NotFound, PayloadTooLarge, ServiceUnavailable
from shared.event_parsing import ParsedBatch, RejectedRow, decompress
from shared.schemas import ErrorBody
from shared.settings import Settings
from shared.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    load_verification_key,
    verify_signature,
)
from shared.source_rows import SourceRows
from shared.source_secrets import SourceSecrets
from shared.webhook_arrivals import TestArrivals, is_test_batch, record_arrival

logger = logging.getLogger(__name__)

# How long a source's token and key are trusted from memory: rotating a key or removing a
# source takes effect within this time, without a database read on every request.
_SOURCE_CACHE_SECONDS = 5.0
# A signature the cached key refuses makes the source be read again, at most this often: the
# key may have been set through another receiver (whose own cache it cleared) a moment ago.
_RELOAD_ON_REFUSAL_SECONDS = 1.0
# A request waits at most this long for its commit before answering 503.
_COMMIT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class WebhookTarget:
    source_id: str
    schema: str
    token: str
    key: ec.EllipticCurvePublicKey | None
    loaded_at: float


class WebhookTargets:
    """Source id -> what a webhook request needs, cached briefly."""

    def __init__(self, rows: SourceRows, secrets: SourceSecrets) -> None:
        self.rows = rows
        self.secrets = secrets
        self._cache: dict[str, WebhookTarget] = {}

    async def get(self, source_id: str) -> WebhookTarget | None:
        cached = self._cache.get(source_id)
        if cached is not None and time.monotonic() - cached.loaded_at < _SOURCE_CACHE_SECONDS:
            return cached
        try:
            source = await self.rows.get(source_id)
        except NotFound:
            self._cache.pop(source_id, None)
            return None
        key = source.webhook_verification_key
        target = WebhookTarget(
            source.id,
            source.schema_name,
            self.secrets.webhook_token(source),
            load_verification_key(key) if key else None,
            time.monotonic(),
        )
        self._cache[source_id] = target
        return target

    async def reload(self, stale: WebhookTarget) -> WebhookTarget | None:
        """The source read again after `stale` refused a request, unless `stale` was read
        less than _RELOAD_ON_REFUSAL_SECONDS ago (a stream of forged requests then costs one
        read a second); None when it was, or the source is gone."""
        if time.monotonic() - stale.loaded_at < _RELOAD_ON_REFUSAL_SECONDS:
            return None
        if self._cache.get(stale.source_id) is stale:
            del self._cache[stale.source_id]
        return await self.get(stale.source_id)

    def forget(self, source_id: str) -> None:
        """Read the source again on its next request (its verification key changed)."""
        self._cache.pop(source_id, None)


class Admission:
    """Counts the webhook requests admitted and not yet answered (for load shedding)."""

    def __init__(self) -> None:
        self.in_flight = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


class WebhookAccepted(BaseModel):
    stored: int
    duplicates: int
    rejected: int


router = APIRouter(tags=["webhook"])

_NOT_FOUND = "no webhook at this URL: check the URL copied from the source"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/{source_id}/{token}",
    response_model=WebhookAccepted,
    responses={code: {"model": ErrorBody} for code in (400, 403, 404, 413, 503)},
)
async def receive_events(source_id: str, token: str, request: Request) -> WebhookAccepted:
    """SendGrid's Event Webhook POSTs a JSON array of events here."""
    settings: Settings = request.app.state.settings
    targets: WebhookTargets = request.app.state.webhook_targets
    writer: EventWriter = request.app.state.writer
    parsers: ParserPool = request.app.state.parsers
    target = await targets.get(source_id)
    if target is None or not hmac.compare_digest(token.encode(), target.token.encode()):
        raise NotFound(_NOT_FOUND)
    admission: Admission = request.app.state.admission
    if admission.in_flight >= settings.INGEST_MAX_IN_FLIGHT:
        # Shed load before spending memory and CPU on the body: SendGrid resends, and the
        # answers of the requests already admitted stay fast.
        raise ServiceUnavailable(
            f"the receiver is overloaded ({admission.in_flight} requests in progress, "
            f"{writer.pending_events} events waiting to be written); nothing was stored, "
            "retry later",
            retry_after=settings.INGEST_OVERLOAD_RETRY_AFTER,
        )
    with admission.admit():
        return await _receive(request, target, targets, settings, writer, parsers)


async def _receive(
    request: Request,
    target: WebhookTarget,
    targets: WebhookTargets,
    settings: Settings,
    writer: EventWriter,
    parsers: ParserPool,
) -> WebhookAccepted:
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    body = decompress(
        await _read_body(request, limit), request.headers.get("content-encoding"), limit
    )
    try:
        _verify(target, body, request, settings)
    except Forbidden:
        # Another receiver may have just stored a new key: check once against the stored one.
        fresh = await targets.reload(target)
        if fresh is None:
            raise
        target = fresh
        _verify(target, body, request, settings)
    if is_test_batch(body):
        # A bytes search (µs): received and authenticated is the signal, not stored, since
        # a second test batch is all duplicates.
        await _note_test_batch(request, target.source_id)
    received_at = datetime.now(UTC)
    try:
        batch = await parsers.parse(body, received_at, settings.WEBHOOK_MAX_EVENTS)
    except AppError as exc:
        # Authenticated but unreadable: keep the bytes so nothing sent is lost, then refuse.
        kept = ParsedBatch(rejected=[RejectedRow.of(f"body refused: {exc.message}", body)])
        await _commit(writer, target, kept, settings)
        raise
    result = await _commit(writer, target, batch, settings)
    return WebhookAccepted(
        stored=result.stored, duplicates=result.duplicates, rejected=result.rejected
    )


def _verify(target: WebhookTarget, body: bytes, request: Request, settings: Settings) -> None:
    """The signature, when the source has a verification key; Forbidden saying why not."""
    if target.key is None:
        return
    tolerance = settings.WEBHOOK_TIMESTAMP_TOLERANCE
    try:
        verify_signature(
            target.key,
            body,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            tolerance_seconds=tolerance.total_seconds() if tolerance else None,
        )
    except SignatureError as exc:
        raise Forbidden(f"signature check failed: {exc}") from None


async def _note_test_batch(request: Request, source_id: str) -> None:
    """SendGrid's test batch arrived: wake a configure flow here, and record it on the row
    for one elsewhere. Recording is best effort: the batch itself is still stored."""
    arrivals: TestArrivals = request.app.state.test_arrivals
    arrivals.note(source_id)
    try:
        await record_arrival(request.app.state.engine, source_id)
    except Exception as exc:  # the database may be down; the events still go their way
        logger.warning("test batch arrival not recorded: %s", type(exc).__name__)


async def _commit(
    writer: EventWriter, target: WebhookTarget, batch: ParsedBatch, settings: Settings
) -> WebhookAccepted:
    try:
        result = await asyncio.wait_for(
            writer.write(target.source_id, target.schema, batch), _COMMIT_TIMEOUT_SECONDS
        )
    except (WriteFailed, TimeoutError) as exc:
        reason = str(exc) or "the database did not commit in time"
        raise ServiceUnavailable(
            f"the events were not stored: {reason}; retry later",
            retry_after=settings.DATABASE_RETRY_AFTER,
        ) from None
    return WebhookAccepted(
        stored=result.stored, duplicates=result.duplicates, rejected=result.rejected
    )
