"""The webhook check after every sync run: recorded on the source, findings stored, and a
SendGrid error during the check never failing the sync."""

from __future__ import annotations

import sqlalchemy as sa

from shared.source_rows import Source
from shared.tables import sources, webhook_findings
from shared.webhook_settings import EVENT_TOGGLES
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.fake_sendgrid.respx_route import FakeAccount


async def manage(deps: SyncDependencies, source: Source, account: FakeAccount) -> str:
    url = deps.settings.webhook_url(source.id, deps.secrets.webhook_token(source))
    hook = account.webhooks.add(
        url, signed=True, enabled=True, **{name: True for name in EVENT_TOGGLES}
    )
    async with deps.engine.begin() as connection:
        await connection.execute(
            sources.update()
            .where(sources.c.id == source.id)
            .values(
                webhook_id=hook["id"],
                webhook_managed="created",
                webhook_verification_key=hook["public_key"],
            )
        )
    return str(hook["id"])


async def findings(deps: SyncDependencies) -> dict[str, str]:
    async with deps.engine.connect() as connection:
        rows = await connection.execute(sa.select(webhook_findings))
        return {row.finding: row.detail for row in rows}


async def test_every_sync_run_checks_the_webhook(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    hook = await manage(sync_deps, source, account)
    account.webhooks.webhooks[hook]["enabled"] = False
    assert (await sync_deps.sources.get(source.id)).webhook_checked_at is None

    outcome = await sync_service.run(source.id, "manual")

    assert outcome is not None
    assert outcome.status == "succeeded"
    assert (await sync_deps.sources.get(source.id)).webhook_checked_at is not None
    assert set(await findings(sync_deps)) == {"disabled"}


async def test_a_sendgrid_error_during_the_check_does_not_fail_the_sync(
    account: FakeAccount, source: Source, sync_service: SyncService, sync_deps: SyncDependencies
) -> None:
    hook = await manage(sync_deps, source, account)
    # The key may read Marketing Campaigns but not the webhook settings.
    account.forbidden.add(f"/v3/user/webhooks/event/settings/{hook}")

    outcome = await sync_service.run(source.id, "manual")

    assert outcome is not None
    assert outcome.status == "succeeded"
    found = await findings(sync_deps)
    assert set(found) == {"check_failed"}
    assert "user.webhooks.event.settings.read" in found["check_failed"]
    assert (await sync_deps.sources.get(source.id)).webhook_checked_at is not None


async def test_a_crashing_check_is_logged_and_the_sync_succeeds(
    account: FakeAccount,
    source: Source,
    sync_service: SyncService,
    sync_deps: SyncDependencies,
) -> None:
    async def crash(_: Source) -> None:
        raise RuntimeError("boom")

    sync_deps.webhook_check.check = crash  # type: ignore[assignment, method-assign]

    outcome = await sync_service.run(source.id, "manual")

    assert outcome is not None
    assert (outcome.status, outcome.error) == ("succeeded", None)
