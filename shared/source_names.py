"""Which names a new (or renamed) source may take: its schema name must be valid and free."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import SQLITE_MAX_ATTACHED
from shared.errors import Conflict, Unprocessable
from shared.identifiers import InvalidIdentifier, schema_name_for
from shared.tables import sources


def schema_for(name: str) -> str:
    """The schema a source named `name` gets; Unprocessable when no valid one follows."""
    try:
        return schema_name_for(name)
    except InvalidIdentifier as exc:
        raise Unprocessable(f"name {name!r} cannot be used: {exc}") from None


async def check_free(connection: AsyncConnection, name: str, schema: str) -> None:
    """Conflict unless no source (removed ones included) and no foreign schema holds the
    name or the schema, and, on SQLite, one more database can be attached.

    Only reads: on SQLite the connection's transaction has not begun yet after it.
    """
    taken = (
        await connection.execute(
            sa.select(sources.c.name, sources.c.deleted_at).where(
                (sources.c.schema_name == schema) | (sources.c.name == name)
            )
        )
    ).first()
    if taken is not None:
        if taken.deleted_at is not None:
            raise Conflict(
                f"schema {schema!r} still holds the data of the removed source "
                f"{taken.name!r}; delete it with ?drop_data=true or choose another name"
            )
        raise Conflict(f"schema {schema!r} is already used by the source {taken.name!r}")
    if connection.dialect.name == "sqlite":
        count = await connection.scalar(sa.select(sa.func.count()).select_from(sources))
        if (count or 0) >= SQLITE_MAX_ATTACHED:
            raise Conflict(
                f"the embedded SQLite warehouse holds at most {SQLITE_MAX_ATTACHED} sources; "
                "set DATABASE_URL to a PostgreSQL database for more"
            )
        return
    exists = await connection.scalar(
        sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
        {"s": schema},
    )
    if exists:
        raise Conflict(
            f"a schema named {schema!r} already exists in this database and does not "
            "belong to sendgrid-source; choose another name"
        )
