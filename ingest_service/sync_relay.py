"""The sync service's run API, relayed: `GET` and `POST /sources/{id}/syncs` on the ingest
service answer what the sync service at SYNC_URL answers.

The console is served by the ingest service and calls one origin; the runs belong to the
sync service, which owns the ledger and carries the runs out. Relaying over HTTP keeps the
two services apart (neither imports the other) and shows the ledger in its owner's words,
whatever collections and statuses it holds. The admin token is passed on: both services
share ADMIN_TOKEN. A sync service that cannot be reached answers 502 saying where it was
looked for, so the console can tell the operator what to start.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request, Response, status

from shared.errors import BadGateway
from shared.registry import SourceRegistry
from shared.schemas import ErrorBody, SyncRun, SyncRunList, SyncStarted

# A run is started in the background there, so both calls answer at once.
RELAY_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class SyncRelay:
    def __init__(self, http: httpx.AsyncClient, base_url: str, admin_token: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {admin_token}"}

    async def send(
        self, method: str, path: str, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            response = await self.http.request(
                method,
                self.base_url + path,
                params=params,
                headers=self._headers,
                timeout=RELAY_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise BadGateway(
                f"the sync service at {self.base_url} did not answer ({type(exc).__name__}): "
                "start it (sendgrid-source sync, or up), or set SYNC_URL to where it listens"
            ) from None
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            raise BadGateway(
                f"the sync service at {self.base_url} refused the admin token: both services "
                "must have the same ADMIN_TOKEN"
            )
        return response

    async def runs(self, source_id: str, limit: int) -> list[SyncRun]:
        """The source's runs, newest first; BadGateway when they cannot be read."""
        response = await self.send("GET", f"/sources/{source_id}/syncs", {"limit": limit})
        if response.status_code != status.HTTP_200_OK:
            raise BadGateway(
                f"the sync service answered {response.status_code}: {_message(response)}"
            )
        return SyncRunList.model_validate_json(response.content).runs


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _relayed(response: httpx.Response) -> Response:
    return Response(
        content=response.content,
        status_code=response.status_code,
        media_type=response.headers.get("content-type", "application/json"),
    )


def get_relay(request: Request) -> SyncRelay:
    relay: SyncRelay = request.app.state.sync_relay
    return relay


router = APIRouter(
    prefix="/sources/{source_id}/syncs",
    tags=["syncs"],
    responses={code: {"model": ErrorBody} for code in (401, 404, 409, 502)},
)


def _registry(request: Request) -> SourceRegistry:
    registry: SourceRegistry = request.app.state.registry
    return registry


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SyncStarted)
async def start_sync(source_id: str, request: Request) -> Response:
    """Start a sync now, in the sync service (relayed); 409 while one is running."""
    # Looked up here first: a clear 404, and only a stored id goes into the relayed URL.
    source = await _registry(request).rows.get(source_id)
    return _relayed(await get_relay(request).send("POST", f"/sources/{source.id}/syncs"))


@router.get("", response_model=SyncRunList)
async def list_syncs(
    source_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The source's runs, newest first, with every collection's status, counts and message,
    as the sync service's ledger holds them (relayed)."""
    source = await _registry(request).rows.get(source_id, include_removed=True)
    relay = get_relay(request)
    return _relayed(await relay.send("GET", f"/sources/{source.id}/syncs", {"limit": limit}))
