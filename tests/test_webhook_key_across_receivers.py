"""A verification key set through one receiver is used at once by another.

Each receiver keeps a source's key in memory for a few seconds (`ingest_service.webhook`);
the receiver that stores a new key forgets its own copy, but another process cannot know.
So a signature its cached key refuses makes it read the source again (at most once a second
per source) before answering 403: SendGrid's first batch signed with the new key, sent
through a load balancer to the other receiver, is stored rather than refused.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from ingest_service.app import create_app as create_ingest_app
from shared.settings import Settings
from tests.conftest import admin_client
from tests.test_webhook import event
from tests.webhook_helpers import Signer, body_of, new_source


async def test_a_key_rotated_through_one_receiver_is_used_by_the_other_at_once(
    ingest: httpx.AsyncClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new, forger = Signer(), Signer(), Signer()
    other_app: FastAPI = create_ingest_app(settings)
    async with other_app.router.lifespan_context(other_app), admin_client(other_app) as other:
        source = await new_source(ingest, "Rotated", old)
        first = body_of([event(1)])
        # The other receiver has the old key in memory now.
        assert (await other.post(source["path"], content=first, headers=old.headers(first))).json()[
            "stored"
        ] == 1
        patched = await ingest.patch(
            f"/sources/{source['id']}", json={"webhook_verification_key": new.verification_key}
        )
        assert patched.status_code == 200, patched.text

        reads = 0
        rows = other_app.state.webhook_targets.rows
        read_source = rows.get

        async def counted(source_id: str) -> object:
            nonlocal reads
            reads += 1
            return await read_source(source_id)

        monkeypatch.setattr(rows, "get", counted)
        # Within a second of its last read, a refused signature is refused without reading
        # the source again: forged requests cannot make a receiver read the database each.
        second = body_of([event(2)])
        refused = await other.post(source["path"], content=second, headers=new.headers(second))
        assert refused.status_code == 403
        assert reads == 0
        # Past that second (made zero here), the source is read again and the new key works.
        monkeypatch.setattr("ingest_service.webhook._RELOAD_ON_REFUSAL_SECONDS", 0.0)
        stored = await other.post(source["path"], content=second, headers=new.headers(second))
        assert stored.status_code == 200, stored.text
        assert stored.json()["stored"] == 1
        assert reads == 1
        # A forged signature is still refused after the read, and the old key no longer works.
        for signer in (forger, old):
            third = body_of([event(3)])
            answer = await other.post(source["path"], content=third, headers=signer.headers(third))
            assert answer.status_code == 403
            assert "signature check failed" in answer.json()["error"]["message"]
