"""REST API of the source registry (admin token required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from shared.errors import Unprocessable
from shared.registry import SourceRegistry
from shared.schemas import (
    ErrorBody,
    SourceCreate,
    SourceList,
    SourcePublic,
    SourceRemoved,
    SourceUpdate,
    WebhookConfigure,
)


def get_registry(request: Request) -> SourceRegistry:
    registry: SourceRegistry = request.app.state.registry
    return registry


RegistryDep = Annotated[SourceRegistry, Depends(get_registry)]

_errors: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 422, 502)
}

router = APIRouter(prefix="/sources", tags=["sources"], responses=_errors)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SourcePublic)
async def create_source(body: SourceCreate, registry: RegistryDep) -> SourcePublic:
    """Register a SendGrid account: checks the key, creates the schema, tables and view.

    With `configure_webhook`, also configures the account's Event Webhook with the key (adopt
    or create, sign, test); a step that fails is a warning, never a lost source."""
    source, warnings = await registry.create(body)
    return registry.public(source, warnings=warnings)


@router.get("", response_model=SourceList)
async def list_sources(registry: RegistryDep) -> SourceList:
    """Every active source."""
    return SourceList(sources=[registry.public(s) for s in await registry.rows.list_sources()])


@router.get("/{source_id}", response_model=SourcePublic)
async def get_source(source_id: str, registry: RegistryDep) -> SourcePublic:
    """One source, with what its webhook has received."""
    return await registry.describe(source_id)


@router.post("/{source_id}/webhook", response_model=SourcePublic)
async def configure_webhook(
    source_id: str,
    registry: RegistryDep,
    body: Annotated[WebhookConfigure | None, Body()] = None,
) -> SourcePublic:
    """Configure (or re-configure) the source's Event Webhook in SendGrid with its API key;
    `adopt_webhook_id` takes over a named webhook. What failed is in `warnings`."""
    adopt = body.adopt_webhook_id if body is not None else None
    source, warnings = await registry.configure_webhook(source_id, adopt)
    return registry.public(source, warnings=warnings)


@router.patch("/{source_id}", response_model=SourcePublic)
async def update_source(source_id: str, body: SourceUpdate, registry: RegistryDep) -> SourcePublic:
    """Rotate the API key, set or clear the verification key, change region or interval,
    turn webhook repair on or off, or rename (refused once the source holds data)."""
    if not body.model_fields_set:
        raise Unprocessable("nothing to change: send at least one field")
    source, warnings = await registry.update(source_id, body)
    return registry.public(source, warnings=warnings)


@router.delete(
    "/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,
    responses={200: {"model": SourceRemoved, "description": "with remove_webhook"}},
)
async def delete_source(
    source_id: str,
    registry: RegistryDep,
    drop_data: Annotated[bool, Query(description="also drop the source's schema")] = False,
    remove_webhook: Annotated[
        bool, Query(description="also delete the webhook sendgrid-source created in SendGrid")
    ] = False,
    remove_adopted_webhook: Annotated[
        bool, Query(description="with remove_webhook: delete an adopted webhook too")
    ] = False,
) -> Response:
    """Stop a source; its data stays unless drop_data=true. With remove_webhook=true the
    answer is 200 and says what was done with the webhook; otherwise 204."""
    removed = await registry.remove(
        source_id,
        drop_data=drop_data,
        remove_webhook=remove_webhook,
        remove_adopted_webhook=remove_adopted_webhook,
    )
    if remove_webhook:
        return JSONResponse(removed.model_dump())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
