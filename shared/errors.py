"""The error tree shared by both services. Every error answers with one JSON shape:

    {"error": {"code": "conflict", "message": "a person-readable sentence"}}

AppError
 ├── BadRequest (400)         ├── PayloadTooLarge (413)
 ├── Unauthorized (401)       ├── Unprocessable (422)
 ├── Forbidden (403)          ├── BadGateway (502)
 ├── NotFound (404)           └── ServiceUnavailable (503, with Retry-After)
 └── Conflict (409)
"""

from __future__ import annotations


class AppError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(AppError):
    status_code = 422
    code = "invalid_request"


class BadGateway(AppError):
    status_code = 502
    code = "upstream_error"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
