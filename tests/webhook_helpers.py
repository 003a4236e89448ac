"""Helpers for webhook tests: sources, signing, reading what was stored."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from shared.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from shared.tables import source_tables
from tests.conftest import api_key
from tests.data import load_test_data_json


def sample_events() -> list[dict[str, Any]]:
    """One example of every event type, as SendGrid's documentation publishes them."""
    events: list[dict[str, Any]] = load_test_data_json("sendgrid_docs_events.json")
    return events


class Signer:
    """A P-256 key pair like the one SendGrid keeps for a signed webhook."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.verification_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str = "1600112502") -> dict[str, str]:
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            TIMESTAMP_HEADER: timestamp,
        }


def body_of(events: list[dict[str, Any]]) -> bytes:
    """Framed as SendGrid frames signed bodies: CRLF between events and at the end."""
    return b"[" + b",\r\n".join(json.dumps(e).encode() for e in events) + b"]\r\n"


async def new_source(
    client: httpx.AsyncClient, name: str = "SendGrid", signer: Signer | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": name, "api_key": api_key()}
    if signer is not None:
        payload["webhook_verification_key"] = signer.verification_key
    response = await client.post("/sources", json=payload)
    assert response.status_code == 201, response.text
    source: dict[str, Any] = response.json()
    source["path"] = source["webhook_url"].removeprefix("http://ingest.test")
    return source


async def rows(app: FastAPI, schema: str, table: str) -> list[dict[str, Any]]:
    engine = app.state.engine
    tables = source_tables(schema)
    target = tables.rejected if table == "rejected" else tables.events[table]
    async with engine.connect() as connection:
        result = await connection.execute(sa.select(target).order_by(target.c.id))
        return [dict(row._mapping) for row in result]


async def count(app: FastAPI, sql: str) -> int:
    async with app.state.engine.connect() as connection:
        return int(await connection.scalar(sa.text(sql)) or 0)
