"""Query parameters as SendGrid checks them: a value it refuses is a 400 with its error body
(`{"errors": [{"field", "message"}]}`), never FastAPI's own 422, which SendGrid never sends.

Handlers call these helpers on `request.query_params` and let `BadRequest` propagate; the app's
exception handler (app.py) turns it into the 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

from fastapi import Request
from fastapi.responses import JSONResponse

from tests.fake_sendgrid.payloads import error_body


class BadRequest(Exception):
    """A query SendGrid answers with 400, naming the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


async def bad_request_answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, BadRequest)
    return JSONResponse(error_body(error.message, error.field), status_code=400)


@overload
def int_param(
    query: Mapping[str, str],
    name: str,
    *,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int: ...


@overload
def int_param(
    query: Mapping[str, str],
    name: str,
    *,
    default: None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None: ...


def int_param(
    query: Mapping[str, str],
    name: str,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """The integer `name`, or `default` when absent; outside [minimum, maximum] is a 400."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(name, f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise BadRequest(name, f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise BadRequest(name, f"{name} must be at most {maximum}")
    return value


def required_int_param(query: Mapping[str, str], name: str, *, minimum: int, maximum: int) -> int:
    value = int_param(query, name, minimum=minimum, maximum=maximum)
    if value is None:
        raise BadRequest(name, f"{name} is required")
    return value


def comma_list(query: Mapping[str, str], name: str, *, max_items: int | None = None) -> list[str]:
    """A comma-separated list parameter (OpenAPI `style: form, explode: false`)."""
    items = [item.strip() for item in query.get(name, "").split(",") if item.strip()]
    if max_items is not None and len(items) > max_items:
        raise BadRequest(name, f"{name} takes at most {max_items} values, not {len(items)}")
    return items


def page_offset(query: Mapping[str, str], total: int) -> int:
    """Where the page a `page_token` names starts. The fake's tokens are offsets, handed out
    only in `_metadata` links: a token past the end (the list shrank since) is an empty last
    page, and one that is no offset at all is a 400 rather than a quiet first page (what
    SendGrid answers to a token it never gave is not documented)."""
    token = query.get("page_token") or "0"
    if not token.isdigit():
        raise BadRequest("page_token", f"invalid page_token {token!r}")
    return min(int(token), total)
