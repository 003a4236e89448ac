"""The bulk write paths store each id once, whichever path a group commit takes."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from ingest_service.bulk import insert_new_rows
from ingest_service.parsing import parse_body
from shared.tables import source_tables
from tests.webhook_helpers import body_of, new_source

pytestmark = pytest.mark.usefixtures("sendgrid")


def delivered(n: int) -> dict[str, object]:
    return {"event": "delivered", "email": f"u{n}@example.com", "timestamp": 1700000000 + n,
            "sg_event_id": f"bulk-{n}", "category": ["a"], "tls": 1, "userid": str(n)}  # fmt: skip


@pytest.mark.parametrize("contended", [False, True], ids=["copy", "on-conflict"])
async def test_insert_new_rows_returns_only_ids_not_stored_before(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, contended: bool
) -> None:
    source = await new_source(ingest)
    schema = source["schema"]
    table = source_tables(schema).events["delivered"]
    now = datetime.now(UTC)
    first = parse_body(body_of([delivered(n) for n in range(3)]), now).rows["delivered"]
    second = parse_body(body_of([delivered(n) for n in range(1, 5)]), now).rows["delivered"]
    engine = ingest_app.state.engine
    async with engine.begin() as connection:
        assert await insert_new_rows(connection, table, first) == {"bulk-0", "bulk-1", "bulk-2"}
    async with engine.begin() as connection:
        new = await insert_new_rows(connection, table, second, contended=contended)
    assert new == {"bulk-3", "bulk-4"}
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(table).order_by(table.c.id))).all()
    assert [row.id for row in rows] == [f"bulk-{n}" for n in range(5)]
    assert rows[4].tls is True
    assert rows[4].category == ["a"]
    assert rows[4].custom_args == {"userid": "4"}
