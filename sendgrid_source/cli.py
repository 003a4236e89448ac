"""The `sendgrid-source` command: run the services, migrate, and manage sources.

The commands live beside it: `sources_commands` (sources ...), `migrate_command`,
`completeness_command`, and `output` (printing and failing) which they all share.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console

from sendgrid_source.completeness_command import completeness
from sendgrid_source.migrate_command import migrate as run_migrations
from sendgrid_source.output import DATABASE_ERRORS, database_problem, fail, out, settings_or_exit
from sendgrid_source.sources_commands import sources_app
from sendgrid_source.supervisor import Supervisor
from shared.errors import AppError
from shared.logs import configure_logging
from shared.settings import Settings

# Tracebacks never show local variables: they would hold API keys and tokens.
app = typer.Typer(
    help="Self-hosted SendGrid source: Event Webhook and Marketing Campaigns in your warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(sources_app, name="sources")
app.command("completeness")(completeness)


def main() -> None:
    app()


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
    settings = settings_or_exit()
    run_migrations(settings)
    ingest_url = _local_url(settings.INGEST_HOST, settings.INGEST_PORT)
    console = out()
    console.print(f"ingest service  {ingest_url}  (webhooks, source registry, docs at /docs)")
    console.print(f"sync service    {_local_url(settings.SYNC_HOST, settings.SYNC_PORT)}")
    console.print(f"admin token     {settings.admin_token}  ({_token_origin(settings)})")
    console.print(f"add a source    sendgrid-source sources add NAME, or POST {ingest_url}/sources")
    sys.stdout.flush()  # before the children write to the same stream

    supervisor = Supervisor(out(stderr=True))
    signal.signal(signal.SIGINT, supervisor.forward)
    signal.signal(signal.SIGTERM, supervisor.forward)
    supervisor.start("ingest")
    supervisor.start("sync")
    pids = ", ".join(f"{name} pid {child.pid}" for name, child in supervisor.children.items())
    console.print(f"started ({pids}); Ctrl-C stops both")
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
    settings = settings_or_exit()
    configure_logging(settings.LOG_LEVEL)
    from ingest_service.app import create_app

    _serve(create_app(settings), settings.INGEST_HOST, settings.INGEST_PORT)


@app.command()
def sync() -> None:
    """Run the sync service: scheduled Marketing Campaigns syncs."""
    settings = settings_or_exit()
    configure_logging(settings.LOG_LEVEL)
    from sync_service.app import create_app

    _serve(create_app(settings), settings.SYNC_HOST, settings.SYNC_PORT)


@app.command("sync-now")
def sync_now(source: Annotated[str, typer.Argument(help="The source's id or name.")]) -> None:
    """Sync one source now, in the foreground; exits non-zero unless every collection synced."""
    settings = settings_or_exit()
    from sync_service.foreground import sync_in_foreground

    # Markup on: the summary table colours each collection's status.
    console = Console(highlight=False)
    try:
        outcome = asyncio.run(sync_in_foreground(settings, source, console))
    except AppError as exc:
        fail(exc.message)
    except DATABASE_ERRORS as exc:
        database_problem(settings, exc)
    if outcome.status != "succeeded":
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Upgrade the control schema and every source schema (safe to repeat)."""
    run_migrations(settings_or_exit())
