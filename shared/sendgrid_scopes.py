"""Checking a SendGrid API key against `GET /v3/scopes` before a source is registered."""

from __future__ import annotations

import httpx

from shared.errors import BadGateway, Unprocessable

# Read scopes the sync needs, and what is lost without each.
READ_SCOPES: dict[str, str] = {
    "marketing.read": "lists, segments, recipients and campaigns (single sends) cannot be synced",
}
LEGACY_SCOPE = "marketing_campaigns.read"


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


def missing_scope_warnings(scopes: list[str]) -> list[str]:
    granted = set(scopes)
    warnings = [
        f"the API key lacks the {scope} scope: {consequence}"
        for scope, consequence in READ_SCOPES.items()
        if scope not in granted and LEGACY_SCOPE not in granted
    ]
    return warnings
