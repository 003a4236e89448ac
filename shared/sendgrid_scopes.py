"""Checking a SendGrid API key against `GET /v3/scopes` before a source is registered."""

from __future__ import annotations

import httpx

from shared.collections import missing_scopes, selected
from shared.errors import BadGateway, Unprocessable


async def fetch_scopes(http: httpx.AsyncClient, base_url: str, api_key: str) -> list[str]:
    try:
        response = await http.get(
            f"{base_url}/v3/scopes", headers={"Authorization": f"Bearer {api_key}"}, timeout=15
        )
    except httpx.HTTPError as exc:
        raise BadGateway(
            f"SendGrid could not be reached to check the API key ({type(exc).__name__}); "
            "try again, or check SENDGRID_API_URL and the network"
        ) from None
    if response.status_code == 401:
        raise Unprocessable(
            "SendGrid rejected this API key (401): check that it is whole and active"
        )
    if response.status_code != 200:
        raise BadGateway(
            f"SendGrid answered {response.status_code} when checking the API key; try again later"
        )
    try:
        scopes = response.json()["scopes"]
    except (ValueError, KeyError, TypeError):
        raise BadGateway("SendGrid's /v3/scopes answer had no scopes list") from None
    return sorted(str(scope) for scope in scopes)


def missing_scope_warnings(scopes: list[str], collections: list[str] | None) -> list[str]:
    """One warning per scope the key lacks, naming the chosen collections that need it: those
    will be recorded as `forbidden` in each run, while the others sync."""
    granted = set(scopes)
    needing: dict[str, list[str]] = {}
    for collection in selected(collections):
        for scope in missing_scopes(collection, granted):
            needing.setdefault(scope, []).append(collection.name)
    return [
        f"the API key lacks the {scope} scope: {', '.join(names)} cannot be synced "
        "(add the scope to the key, or leave these collections out)"
        for scope, names in needing.items()
    ]
