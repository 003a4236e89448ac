"""`GET /sources/{id}/webhook/check` on the ingest service, `webhook.drift` in
`GET /sources/{id}`, and a rotated key repaired so signed batches keep verifying."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from shared.tables import sources
from shared.webhook_settings import EVENT_TOGGLES
from tests.fake_sendgrid.respx_route import FakeAccount
from tests.webhook_helpers import body_of, new_source, sample_events


async def managed(
    app: FastAPI, client: httpx.AsyncClient, account: FakeAccount, *, repair: bool
) -> tuple[dict[str, object], str]:
    source = await new_source(client)
    hook = account.webhooks.add(
        str(source["webhook_url"]),
        signed=True,
        enabled=True,
        **{name: True for name in EVENT_TOGGLES},
    )
    async with app.state.engine.begin() as connection:
        await connection.execute(
            sources.update()
            .where(sources.c.id == source["id"])
            .values(
                webhook_id=hook["id"],
                webhook_managed="adopted",
                webhook_repair=repair,
                webhook_verification_key=hook["public_key"],
            )
        )
    return source, str(hook["id"])


async def test_the_check_needs_the_admin_token(
    ingest_app: FastAPI, ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    source, _ = await managed(ingest_app, ingest, account, repair=False)
    path = f"/sources/{source['id']}/webhook/check"

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingest_app), base_url="http://ingest.test"
    ) as anonymous:
        refused = await anonymous.get(path)
        wrong = await anonymous.get(path, headers={"Authorization": "Bearer not-the-token-at-all"})

    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert account.requests == 0  # SendGrid was never asked
    assert (await ingest.get("/sources/nope/webhook/check")).status_code == 404


async def test_the_check_answers_the_findings_and_the_source_shows_them(
    ingest_app: FastAPI, ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    source, hook = await managed(ingest_app, ingest, account, repair=False)
    account.webhooks.webhooks[hook].update(open=False, click=False)

    answer = await ingest.get(f"/sources/{source['id']}/webhook/check")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(f["finding"], f["detail"]) for f in body["findings"]] == [
        ("events_off", "open, click")
    ]
    shown = (await ingest.get(f"/sources/{source['id']}")).json()
    assert [(f["finding"], f["detail"]) for f in shown["webhook"]["drift"]] == [
        ("events_off", "open, click")
    ]
    assert shown["webhook"]["drift"][0]["first_seen_at"] == body["findings"][0]["first_seen_at"]


async def test_a_rotated_key_is_stored_and_batches_signed_with_it_verify(
    ingest_app: FastAPI, ingest: httpx.AsyncClient, account: FakeAccount
) -> None:
    source, hook = await managed(ingest_app, ingest, account, repair=True)
    new_key = account.webhooks.sign(hook)  # SendGrid made a new key pair

    answer = await ingest.get(f"/sources/{source['id']}/webhook/check")

    assert [(f["finding"], f["repaired_at"] is not None) for f in answer.json()["findings"]] == [
        ("key_rotated", True)
    ]
    async with ingest_app.state.engine.connect() as connection:
        stored = await connection.scalar(
            sa.select(sources.c.webhook_verification_key).where(sources.c.id == source["id"])
        )
    assert stored == new_key
    body = body_of(sample_events())
    posted = await ingest.post(
        str(source["path"]), content=body, headers=account.webhooks.signed_headers(hook, body)
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["stored"] == len(sample_events())
