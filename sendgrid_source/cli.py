"""The `sendgrid-source` command: run the services, migrate, and manage sources."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from types import FrameType
from typing import Annotated, NoReturn, TypeVar

import httpx
import sqlalchemy as sa
import typer
import uvicorn
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from sendgrid_source.supervisor import Supervisor
from shared.db import create_engine
from shared.errors import AppError, Conflict, NotFound
from shared.logs import configure_logging
from shared.migrate import MIGRATIONS, upgrade_control_schema, upgrade_source_schemas
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate, SourcePublic
from shared.settings import ConfigurationError, Settings, get_settings
from shared.source_rows import Source
from shared.tables import CONTROL_SCHEMA

T = TypeVar("T")

# Tracebacks never show local variables: they would hold API keys and tokens.
app = typer.Typer(
    help="Self-hosted SendGrid source: Event Webhook and Marketing Campaigns in your warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
sources_app = typer.Typer(help="Register, list and remove SendGrid sources.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


def main() -> None:
    app()


def _out(*, stderr: bool = False) -> Console:
    # No markup: names, URLs and messages are printed as they are.
    console = Console(stderr=stderr, highlight=False, markup=False)
    if not console.is_terminal:
        # Piped or captured output is read by programs: keep each line (and URL) whole.
        console = Console(stderr=stderr, highlight=False, markup=False, width=1000)
    return console


def _fail(message: str, code: int = 1) -> NoReturn:
    _out(stderr=True).print(message, style="red")
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as exc:
        _fail(str(exc), code=2)


def _safe_url(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def _database_problem(settings: Settings, exc: Exception) -> NoReturn:
    reason = getattr(exc, "orig", None) or exc
    _fail(f"cannot use the database at {_safe_url(settings.DATABASE_URL)}: {reason}")


_DATABASE_ERRORS = (OSError, sa.exc.OperationalError, sa.exc.InterfaceError)


# --- migrations ----------------------------------------------------------------------------


async def _control_revision(engine: AsyncEngine) -> str | None:
    def current(connection: sa.Connection) -> str | None:
        postgres = connection.dialect.name == "postgresql"
        opts = {"version_table_schema": CONTROL_SCHEMA} if postgres else {}
        return MigrationContext.configure(connection, opts=opts).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(current)


def _head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


async def _upgrade_sources(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        return await upgrade_source_schemas(engine)
    finally:
        await engine.dispose()


async def _revision_of(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        return await _control_revision(engine)
    finally:
        await engine.dispose()


def _migrate(settings: Settings) -> None:
    """Upgrade the control schema, then every source schema, and say what changed."""
    out = _out()
    try:
        before = asyncio.run(_revision_of(settings.DATABASE_URL))
        upgrade_control_schema(settings.DATABASE_URL)
        upgraded = asyncio.run(_upgrade_sources(settings.DATABASE_URL))
    except _DATABASE_ERRORS as exc:
        _database_problem(settings, exc)
    head = _head_revision()
    if before == head:
        out.print(f"control schema: already at revision {head}")
    else:
        out.print(f"control schema: upgraded from {before or 'an empty database'} to {head}")
    if upgraded:
        out.print(f"source schemas: upgraded {', '.join(upgraded)}")
    else:
        out.print("source schemas: all up to date")


# --- the services --------------------------------------------------------------------------


def _local_url(host: str, port: int) -> str:
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _token_origin(settings: Settings) -> str:
    path = settings.DATA_DIR / "admin_token"
    if path.exists() and path.read_text().strip() == settings.admin_token:
        return f"saved in {path}"
    return "from ADMIN_TOKEN"


@app.command()
def up() -> None:
    """Migrate, then run the ingest and sync services together (what scripts/run starts)."""
    settings = _settings()
    _migrate(settings)
    ingest_url = _local_url(settings.INGEST_HOST, settings.INGEST_PORT)
    out = _out()
    out.print(f"ingest service  {ingest_url}  (webhooks, source registry, docs at /docs)")
    out.print(f"sync service    {_local_url(settings.SYNC_HOST, settings.SYNC_PORT)}")
    out.print(f"admin token     {settings.admin_token}  ({_token_origin(settings)})")
    out.print(f"add a source    sendgrid-source sources add NAME, or POST {ingest_url}/sources")
    sys.stdout.flush()  # before the children write to the same stream

    supervisor = Supervisor(_out(stderr=True))
    signal.signal(signal.SIGINT, supervisor.forward)
    signal.signal(signal.SIGTERM, supervisor.forward)
    supervisor.start("ingest")
    supervisor.start("sync")
    pids = ", ".join(f"{name} pid {child.pid}" for name, child in supervisor.children.items())
    out.print(f"started ({pids}); Ctrl-C stops both")
    sys.stdout.flush()
    raise typer.Exit(supervisor.wait())


def _serve(service: FastAPI, host: str, port: int) -> None:
    server = uvicorn.Server(
        uvicorn.Config(service, host=host, port=port, access_log=False, log_config=None)
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    # uvicorn takes SIGINT/SIGTERM over while it serves and raises them again once it has shut
    # down gracefully; these handlers turn that second delivery into a clean exit 0 (rather
    # than death by signal), and a signal landing before uvicorn takes over still stops it.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server.run()
    if not server.started:
        raise typer.Exit(1)


@app.command()
def ingest() -> None:
    """Run the ingest service: the Event Webhook receiver and the source registry API."""
    settings = _settings()
    configure_logging(settings.LOG_LEVEL)
    from ingest_service.app import create_app

    _serve(create_app(settings), settings.INGEST_HOST, settings.INGEST_PORT)


@app.command()
def sync() -> None:
    """Run the sync service: scheduled Marketing Campaigns syncs."""
    settings = _settings()
    configure_logging(settings.LOG_LEVEL)
    from sync_service.app import create_app

    _serve(create_app(settings), settings.SYNC_HOST, settings.SYNC_PORT)


@app.command("sync-now")
def sync_now(source: Annotated[str, typer.Argument(help="The source's id or name.")]) -> None:
    """Sync one source now, in the foreground; exits non-zero unless every collection synced."""
    settings = _settings()
    from sync_service.foreground import sync_in_foreground

    # Markup on: the summary table colours each collection's status.
    console = Console(highlight=False)
    try:
        outcome = asyncio.run(sync_in_foreground(settings, source, console))
    except AppError as exc:
        _fail(exc.message)
    except _DATABASE_ERRORS as exc:
        _database_problem(settings, exc)
    if outcome.status != "succeeded":
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Upgrade the control schema and every source schema (safe to repeat)."""
    _migrate(_settings())


# --- sources -------------------------------------------------------------------------------


class RegionChoice(StrEnum):
    GLOBAL = "global"
    EU = "eu"


async def _with_registry(settings: Settings, work: Callable[[SourceRegistry], Awaitable[T]]) -> T:
    engine = create_engine(settings.DATABASE_URL)
    try:
        revision, head = await _control_revision(engine), _head_revision()
        if revision is None:
            raise NotFound("the database has no sendgrid-source tables yet: run migrate first")
        if revision != head:
            raise Conflict(f"the database is at revision {revision}, not {head}: run migrate first")
        async with httpx.AsyncClient() as http:
            return await work(SourceRegistry(engine, settings, http))
    finally:
        await engine.dispose()


def _registry_call(settings: Settings, work: Callable[[SourceRegistry], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_with_registry(settings, work))
    except AppError as exc:
        _fail(exc.message)
    except _DATABASE_ERRORS as exc:
        _database_problem(settings, exc)


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="e.g. SendGrid; its schema is named after it")],
    api_key: Annotated[
        str,
        typer.Option(
            prompt="SendGrid API key",
            hide_input=True,
            help="A key with read access; asked for (hidden) when omitted.",
        ),
    ],
    verification_key: Annotated[
        str | None,
        typer.Option(help="The Signed Event Webhook's verification key (base64)."),
    ] = None,
    region: Annotated[RegionChoice, typer.Option(help="The account's data region.")] = (
        RegionChoice.GLOBAL
    ),
    interval: Annotated[
        str | None, typer.Option(help="Time between syncs, e.g. 3h; default SYNC_INTERVAL.")
    ] = None,
) -> None:
    """Register a SendGrid account: checks the key and creates the source's schema."""
    settings = _settings()
    try:
        request = SourceCreate(
            name=name,
            api_key=api_key,
            webhook_verification_key=verification_key,
            region=region.value,
            sync_interval=interval,
        )
    except ValidationError as exc:
        # Only each error's place and message: pydantic's full text repeats the input (the key).
        _fail("; ".join(_option_error(error) for error in exc.errors()))

    async def create(registry: SourceRegistry) -> tuple[SourcePublic, list[str]]:
        source, warnings = await registry.create(request)
        return registry.public(source), warnings

    public, warnings = _registry_call(settings, create)
    out = _out()
    out.print(f"added source {public.name!r}", style="green")
    out.print(f"  id           {public.id}")
    out.print(f"  schema       {public.schema_name}")
    out.print(f"  region       {public.region}")
    out.print(f"  webhook URL  {public.webhook_url}")
    out.print(f"  signed       {'yes' if public.webhook_signed else 'no'}")
    for warning in warnings:
        out.print(f"warning: {warning}", style="yellow")
    out.print("In SendGrid: Settings > Mail Settings > Event Webhook, paste the webhook URL.")


_OPTION_NAMES = {
    "name": "NAME",
    "api_key": "--api-key",
    "webhook_verification_key": "--verification-key",
    "region": "--region",
    "sync_interval": "--interval",
}


def _option_error(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"].removeprefix("Value error, ").removeprefix(f"{field}: ")
    return f"{_OPTION_NAMES.get(field, field)}: {message}"


@sources_app.command("list")
def sources_list() -> None:
    """Every active source, with its schema and webhook URL."""
    settings = _settings()

    async def rows(registry: SourceRegistry) -> list[SourcePublic]:
        return [registry.public(source) for source in await registry.rows.list_sources()]

    sources = _registry_call(settings, rows)
    if not sources:
        _out().print("no sources yet: add one with `sendgrid-source sources add NAME`")
        return
    table = Table("name", "schema", "region")
    # On a narrow terminal the URL folds onto more lines rather than being cut short.
    table.add_column("webhook URL", overflow="fold")
    table.add_column("signed")
    for source in sources:
        signed = "yes" if source.webhook_signed else "no"
        table.add_row(source.name, source.schema_name, source.region, source.webhook_url, signed)
    _out().print(table)


async def _find(registry: SourceRegistry, id_or_name: str, drop_data: bool) -> Source:
    source = await registry.rows.find(id_or_name, include_removed=True)
    if source.deleted_at is not None and not drop_data:
        raise NotFound(
            f"source {source.name!r} is already removed; its data is still in schema "
            f"{source.schema_name!r}: add --drop-data to delete it"
        )
    return source


@sources_app.command("remove")
def sources_remove(
    id_or_name: Annotated[str, typer.Argument(help="The source's id or name.")],
    drop_data: Annotated[bool, typer.Option(help="Also drop its schema and all its data.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop a source. Its data stays in its schema unless --drop-data is given."""
    settings = _settings()
    source = _registry_call(settings, lambda registry: _find(registry, id_or_name, drop_data))
    if drop_data:
        question = f"Remove {source.name!r} and DROP schema {source.schema_name!r} with its data?"
    else:
        question = f"Stop {source.name!r}? Its data stays in schema {source.schema_name!r}."
    if not yes:
        typer.confirm(question, abort=True)
    _registry_call(settings, lambda registry: registry.remove(source.id, drop_data=drop_data))
    done = "removed, data dropped" if drop_data else "removed; its data stays in the schema"
    _out().print(f"source {source.name!r}: {done}", style="green")
