"""`GET /sources/{id}/webhook/check` (admin token): check the source's webhook now.

The same check the sync service runs after every sync (shared/webhook_check.py): it reads the
webhook back from SendGrid, repairs it when the source has `webhook_repair` on, looks for
silence, stores the findings and answers them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from shared.registry import SourceRegistry
from shared.schemas import ErrorBody, WebhookCheckResult
from shared.webhook_check import WebhookCheck

router = APIRouter(
    prefix="/sources",
    tags=["sources"],
    responses={code: {"model": ErrorBody} for code in (401, 404)},
)


@router.get("/{source_id}/webhook/check", response_model=WebhookCheckResult)
async def check_webhook(source_id: str, request: Request) -> WebhookCheckResult:
    """Read the source's webhook back from SendGrid now and answer what is wrong with it."""
    registry: SourceRegistry = request.app.state.registry
    check: WebhookCheck = getattr(request.app.state, "webhook_check", None) or WebhookCheck(
        registry.engine, registry.settings, registry.http, registry.secrets
    )
    return await check.check(await registry.rows.get(source_id))
