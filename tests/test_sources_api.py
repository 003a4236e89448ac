"""The source registry API, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import respx
import sqlalchemy as sa
from fastapi import FastAPI

from shared.events import EVENT_TABLES
from shared.tables import sources
from tests.conftest import api_key


async def create(
    client: httpx.AsyncClient, name: str = "SendGrid", **extra: object
) -> httpx.Response:
    return await client.post("/sources", json={"name": name, "api_key": api_key(), **extra})


async def table_names(app: FastAPI, schema: str) -> set[str]:
    engine = app.state.engine
    async with engine.connect() as connection:
        return set(
            await connection.run_sync(
                lambda sync: (
                    sa.inspect(sync).get_table_names(schema=schema)
                    + sa.inspect(sync).get_view_names(schema=schema)
                )
            )
        )


async def test_create_source_builds_its_schema(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    response = await create(ingest, "SendGrid EU", region="eu")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["schema"] == "sendgrid_eu"
    assert body["region"] == "eu"
    assert body["webhook_url"].startswith(f"http://ingest.test/webhooks/{body['id']}/")
    assert len(body["webhook_url"].rsplit("/", 1)[1]) >= 22  # >= 128 bits, base64url
    assert "api_key" not in body
    assert "api_key_encrypted" not in body
    assert body["warnings"] == []
    names = await table_names(ingest_app, "sendgrid_eu")
    assert set(EVENT_TABLES) | {"lists", "segments", "recipients", "campaigns", "rejected"} <= names
    assert "activity" in names


async def test_second_source_gets_its_own_schema(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    first = (await create(ingest, "SendGrid")).json()
    second = (await create(ingest, "Marketing Account")).json()
    assert (first["schema"], second["schema"]) == ("sendgrid", "marketing_account")
    assert first["webhook_url"] != second["webhook_url"]
    assert "activity" in await table_names(ingest_app, "marketing_account")
    listed = (await ingest.get("/sources")).json()["sources"]
    assert [s["name"] for s in listed] == ["SendGrid", "Marketing Account"]


async def test_activity_view_is_queryable_by_schema_name(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    await create(ingest, "SendGrid")
    async with ingest_app.state.engine.connect() as connection:
        count = await connection.scalar(sa.text("SELECT count(*) FROM sendgrid.activity"))
    assert count == 0


async def test_admin_token_required(ingest_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=ingest_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as anonymous:
        missing = await anonymous.get("/sources")
        wrong = await anonymous.get("/sources", headers={"Authorization": "Bearer nope"})
        post = await anonymous.post("/sources", json={"name": "x", "api_key": api_key()})
    assert (missing.status_code, wrong.status_code, post.status_code) == (401, 401, 401)
    assert "ADMIN_TOKEN" in missing.json()["error"]["message"]
    assert wrong.json()["error"]["message"] == "the admin token is wrong"


async def test_name_taken_is_409(ingest: httpx.AsyncClient) -> None:
    assert (await create(ingest, "SendGrid")).status_code == 201
    again = await create(ingest, "sendgrid")
    assert again.status_code == 409
    assert (
        "schema 'sendgrid' is already used by the source 'SendGrid'"
        in again.json()["error"]["message"]
    )


async def test_unsafe_names_are_422_before_any_sql(ingest: httpx.AsyncClient) -> None:
    for name in ['x"; DROP TABLE sources; --', "sеndgrid", "public", "select", "pg_catalog", "  "]:
        response = await create(ingest, name)
        assert response.status_code == 422, name
        assert response.json()["error"]["code"] == "invalid_request"
    assert (await ingest.get("/sources")).json()["sources"] == []


async def test_malformed_bodies_get_clear_messages(ingest: httpx.AsyncClient) -> None:
    no_key = await ingest.post("/sources", json={"name": "SendGrid"})
    assert no_key.status_code == 422
    assert "api_key: Field required" in no_key.json()["error"]["message"]
    bad_key = await ingest.post("/sources", json={"name": "SendGrid", "api_key": "hello"})
    assert "start with 'SG.'" in bad_key.json()["error"]["message"]
    bad_region = await create(ingest, "SendGrid", region="mars")
    assert "region" in bad_region.json()["error"]["message"]
    typo = await create(ingest, "SendGrid", regoin="eu")
    assert "regoin: Extra inputs are not permitted" in typo.json()["error"]["message"]
    bad_vkey = await create(ingest, "SendGrid", webhook_verification_key="not-a-key")
    assert bad_vkey.status_code == 422
    assert "webhook_verification_key" in bad_vkey.json()["error"]["message"]
    not_json = await ingest.post(
        "/sources", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422


async def test_key_is_trimmed_checked_and_never_stored_plain(
    ingest: httpx.AsyncClient, ingest_app: FastAPI, sendgrid: respx.MockRouter
) -> None:
    key = api_key()
    response = await ingest.post("/sources", json={"name": "SendGrid", "api_key": f"  {key}\n"})
    assert response.status_code == 201
    assert sendgrid.calls.last.request.headers["Authorization"] == f"Bearer {key}"
    async with ingest_app.state.engine.connect() as connection:
        rows = (await connection.execute(sa.select(sources))).all()
    assert rows
    assert all(key not in str(value) for row in rows for value in row)


async def test_rejected_key_is_422(ingest: httpx.AsyncClient, sendgrid: respx.MockRouter) -> None:
    sendgrid.get("/v3/scopes").respond(
        401, json={"errors": [{"field": None, "message": "authorization required"}]}
    )
    response = await create(ingest)
    assert response.status_code == 422
    assert "SendGrid rejected this API key" in response.json()["error"]["message"]


async def test_missing_read_scope_is_a_warning(
    ingest: httpx.AsyncClient, sendgrid: respx.MockRouter
) -> None:
    sendgrid.get("/v3/scopes").respond(200, json={"scopes": ["mail.send"]})
    response = await create(ingest)
    assert response.status_code == 201
    assert any("marketing.read" in warning for warning in response.json()["warnings"])


async def test_patch_rotates_key_and_sets_verification_key(ingest: httpx.AsyncClient) -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    created = (await create(ingest)).json()
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    patched = await ingest.patch(
        f"/sources/{created['id']}",
        json={"api_key": api_key(), "webhook_verification_key": base64.b64encode(public).decode()},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["webhook_signed"] is True
    assert body["api_key_fingerprint"] != created["api_key_fingerprint"]
    assert body["webhook_url"] == created["webhook_url"]
    cleared = await ingest.patch(
        f"/sources/{created['id']}", json={"webhook_verification_key": None}
    )
    assert cleared.json()["webhook_signed"] is False
    empty = await ingest.patch(f"/sources/{created['id']}", json={})
    assert empty.status_code == 422


async def test_rename_moves_an_empty_schema_but_not_one_with_data(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    created = (await create(ingest, "SendGrid")).json()
    renamed = await ingest.patch(f"/sources/{created['id']}", json={"name": "SendGrid Prod"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["schema"] == "sendgrid_prod"
    assert "activity" in await table_names(ingest_app, "sendgrid_prod")
    async with ingest_app.state.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO sendgrid_prod.lists (id, name, api, raw, synced_at) "
                "VALUES ('l1', 'List', 'marketing', '{}', CURRENT_TIMESTAMP)"
            )
        )
    refused = await ingest.patch(f"/sources/{created['id']}", json={"name": "Other"})
    assert refused.status_code == 409
    assert "already holds data" in refused.json()["error"]["message"]


async def test_delete_keeps_data_unless_asked(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    created = (await create(ingest, "SendGrid")).json()
    assert (await ingest.delete(f"/sources/{created['id']}")).status_code == 204
    assert (await ingest.get(f"/sources/{created['id']}")).status_code == 404
    assert "activity" in await table_names(ingest_app, "sendgrid")
    reused = await create(ingest, "SendGrid")
    assert reused.status_code == 409
    assert "drop_data=true" in reused.json()["error"]["message"]
    dropped = await ingest.delete(f"/sources/{created['id']}", params={"drop_data": "true"})
    assert dropped.status_code == 204
    assert (await create(ingest, "SendGrid")).status_code == 201


async def test_get_source_shows_webhook_summary(ingest: httpx.AsyncClient) -> None:
    created = (await create(ingest)).json()
    body = (await ingest.get(f"/sources/{created['id']}")).json()
    assert body["webhook"]["events_last_24h"] == {table: 0 for table in EVENT_TABLES}
    assert body["webhook"]["last_event_at"] is None
    unknown = await ingest.get("/sources/nope")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "no source with id 'nope'"}}


async def test_history_and_repair_are_chosen_at_registration_and_repair_changed_later(
    ingest: httpx.AsyncClient,
) -> None:
    created = await create(ingest, backfill_days=30, completeness_repair=True)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["backfill_days"], body["completeness_repair"]) == (30, True)

    changed = await ingest.patch(f"/sources/{body['id']}", json={"completeness_repair": False})

    assert changed.status_code == 200, changed.text
    shown = (await ingest.get(f"/sources/{body['id']}")).json()
    assert (shown["backfill_days"], shown["completeness_repair"]) == (30, False)


async def test_more_history_than_sendgrid_keeps_is_refused_with_the_limit(
    ingest: httpx.AsyncClient,
) -> None:
    response = await create(ingest, backfill_days=31)

    assert response.status_code == 422
    assert "backfill_days" in response.text
    assert "30" in response.text
