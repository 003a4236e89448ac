"""What both FastAPI services have in common: errors, admin auth, health, metrics, access log."""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

import sqlalchemy.exc
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path

from shared.clickhouse import ClickHouse
from shared.clickhouse_shards import ClusterNotFound, cluster_shards
from shared.db import ping
from shared.errors import AppError, ServiceUnavailable, Unauthorized
from shared.gc_tuning import tune_garbage_collection
from shared.logs import register_secret
from shared.schemas import Health
from shared.settings import Settings

log = logging.getLogger("sendgrid_source.http")

HTTP_REQUESTS = Counter(
    "sendgrid_source_http_requests_total", "HTTP requests answered", ["service", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "sendgrid_source_http_request_seconds",
    "Time to answer an HTTP request",
    ["service", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_bearer = HTTPBearer(auto_error=False, description="The admin token (ADMIN_TOKEN)")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI, retry_after: int) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    @app.exception_handler(sqlalchemy.exc.InterfaceError)
    @app.exception_handler(OSError)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", extra={"fields": {"error": type(exc).__name__}})
        error = ServiceUnavailable(
            "the database is unavailable; nothing was stored, retry later", retry_after=retry_after
        )
        return error_response(error.status_code, error.code, error.message, error.headers)


def check_admin_token(authorization: str | None, expected_token: str) -> None:
    """The admin rule, in one place: `Authorization: Bearer <ADMIN_TOKEN>`, compared in
    constant time. Raises Unauthorized saying what is wrong."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the admin API needs 'Authorization: Bearer <ADMIN_TOKEN>'")
    if not hmac.compare_digest(token.encode(), expected_token.encode()):
        raise Unauthorized("the admin token is wrong")


def admin_auth(expected_token: str) -> Callable[..., Awaitable[None]]:
    """A dependency applying `check_admin_token`; through `_bearer` the OpenAPI document
    shows the security scheme."""

    async def require_admin(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        check_admin_token(request.headers.get("authorization"), expected_token)

    return require_admin


def _path_regexes(router: APIRouter) -> list[re.Pattern[str]]:
    """The path patterns of every route of `router`, those of routers it includes too
    (FastAPI keeps an included router as one entry, resolved when the app is built)."""
    patterns: list[re.Pattern[str]] = []

    def walk(routes: Sequence[BaseRoute], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                walk(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
            elif isinstance(route, APIRoute):
                patterns.append(compile_path(prefix + route.path)[0])

    walk(router.routes, "")
    return patterns


def install_admin_token_check(app: FastAPI, admin_router: APIRouter, expected_token: str) -> None:
    """Apply `check_admin_token` before FastAPI reads or validates the body: an anonymous
    caller learns nothing about its body and cannot make the service buffer it."""
    admin_paths = _path_regexes(admin_router)

    @app.middleware("http")
    async def admin_token_first(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if any(path.match(request.url.path) for path in admin_paths):
            try:
                check_admin_token(request.headers.get("authorization"), expected_token)
            except Unauthorized as exc:
                return error_response(exc.status_code, exc.code, exc.message)
        return await call_next(request)


def create_service_app(
    *,
    service: str,
    summary: str,
    settings: Settings,
    engine: AsyncEngine,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    admin_router: APIRouter,
    clickhouse: ClickHouse | None = None,
) -> FastAPI:
    """A FastAPI app with what both services share: errors, health, metrics, access log,
    and the admin router behind the admin token. `clickhouse`: the event warehouse when it
    is not the database, which readiness checks too."""

    @asynccontextmanager
    async def tuned_lifespan(app: FastAPI) -> AsyncIterator[None]:
        tune_garbage_collection()
        async with lifespan(app):
            yield

    app = FastAPI(
        title=f"sendgrid-source {service}",
        summary=summary,
        version="0.1.0",
        lifespan=tuned_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    register_secret(settings.admin_token)
    install_error_handlers(app, settings.DATABASE_RETRY_AFTER)
    install_admin_token_check(app, admin_router, settings.admin_token)
    install_operational_routes(app, service, engine, clickhouse)
    app.include_router(admin_router, dependencies=[Depends(admin_auth(settings.admin_token))])
    return app


def install_operational_routes(
    app: FastAPI, service: str, engine: AsyncEngine, clickhouse: ClickHouse | None = None
) -> None:
    @app.get("/healthz", tags=["operations"], response_model=Health)
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get(
        "/readyz", tags=["operations"], response_model=Health, responses={503: {"model": Health}}
    )
    async def readyz(response: Response) -> Health:
        """The database (and the ClickHouse warehouse, when there is one) is reachable."""
        try:
            await ping(engine)
        except Exception as exc:
            response.status_code = 503
            return Health(status="unavailable", detail=f"database: {type(exc).__name__}")
        if clickhouse is not None:
            try:
                await clickhouse.execute("SELECT 1")
                if clickhouse.target.cluster is not None:
                    await cluster_shards(clickhouse, clickhouse.target.cluster)
            except ClusterNotFound as exc:
                response.status_code = 503
                return Health(status="unavailable", detail=f"warehouse: {exc}")
            except Exception as exc:
                response.status_code = 503
                return Health(status="unavailable", detail=f"warehouse: {type(exc).__name__}")
        return Health(status="ok")

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = request.scope.get("route")
        # The route template, never the path: webhook paths carry the source's token.
        template = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(service, template, str(response.status_code)).inc()
        HTTP_LATENCY.labels(service, template).observe(elapsed)
        log.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "route": template,
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 1),
                }
            },
        )
        return response
