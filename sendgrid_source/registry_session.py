"""Running registry work from a command: on an up-to-date database, errors as messages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from sendgrid_source.migrate_command import control_revision, head_revision
from sendgrid_source.output import DATABASE_ERRORS, database_problem, fail
from shared.db import create_engine
from shared.errors import AppError, Conflict, NotFound
from shared.registry import SourceRegistry
from shared.settings import Settings

T = TypeVar("T")


async def _with_registry(settings: Settings, work: Callable[[SourceRegistry], Awaitable[T]]) -> T:
    engine = create_engine(settings.DATABASE_URL)
    try:
        revision, head = await control_revision(engine), head_revision()
        if revision is None:
            raise NotFound("the database has no sendgrid-source tables yet: run migrate first")
        if revision != head:
            raise Conflict(f"the database is at revision {revision}, not {head}: run migrate first")
        async with httpx.AsyncClient() as http:
            registry = SourceRegistry(engine, settings, http)
            try:
                return await work(registry)
            finally:
                await registry.close()
    finally:
        await engine.dispose()


def registry_call(settings: Settings, work: Callable[[SourceRegistry], Awaitable[T]]) -> T:
    """`work` on a registry of its own; an AppError or a database failure exits with 1."""
    try:
        return asyncio.run(_with_registry(settings, work))
    except AppError as exc:
        fail(exc.message)
    except DATABASE_ERRORS as exc:
        database_problem(settings, exc)
