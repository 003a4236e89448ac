"""What every command prints, and how a command fails: a clear message and a non-zero exit."""

from __future__ import annotations

from typing import NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from shared.settings import ConfigurationError, Settings, get_settings

# What the database raises when it cannot be reached or used.
DATABASE_ERRORS = (OSError, sa.exc.OperationalError, sa.exc.InterfaceError)


def out(*, stderr: bool = False) -> Console:
    # No markup: names, URLs and messages are printed as they are.
    console = Console(stderr=stderr, highlight=False, markup=False)
    if not console.is_terminal:
        # Piped or captured output is read by programs: keep each line (and URL) whole.
        console = Console(stderr=stderr, highlight=False, markup=False, width=1000)
    return console


def fail(message: str, code: int = 1) -> NoReturn:
    out(stderr=True).print(message, style="red")
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as exc:
        fail(str(exc), code=2)


def database_problem(settings: Settings, exc: Exception) -> NoReturn:
    reason = getattr(exc, "orig", None) or exc
    where = make_url(settings.DATABASE_URL).render_as_string(hide_password=True)
    fail(f"cannot use the database at {where}: {reason}")
