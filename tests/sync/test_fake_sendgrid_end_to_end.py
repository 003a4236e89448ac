"""A whole sync through real HTTP semantics against the fake SendGrid server (ASGI, no network)."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from shared.source_rows import Source
from shared.tables import source_tables
from sync_service.runner import SyncDependencies
from sync_service.service import SyncService
from tests.fake_sendgrid.app import create_fake_sendgrid
from tests.fake_sendgrid.state import generated_account
from tests.sync.fakes import FakeTime

LIST_NAMES = ("bounces", "blocks", "spam_reports", "invalid_emails", "global_unsubscribes")


async def test_sync_through_paging_rate_limits_and_a_two_file_export(
    sync_deps: SyncDependencies, source: Source, fake_time: FakeTime
) -> None:
    state = generated_account(contacts=2345, lists=2500, rate_limit_every=7, export_files=2)
    transport = httpx.ASGITransport(app=create_fake_sendgrid(state))
    async with httpx.AsyncClient(transport=transport) as fake_http:
        sync_deps.http = fake_http
        outcome = await SyncService(sync_deps).run(source.id, "manual")

    assert outcome is not None
    assert outcome.status == "succeeded", outcome
    counts = {r.collection: r.rows_upserted for r in outcome.collections}
    # Every collection of the generated account (state.generate_collections says its shape).
    suppressions = {f"suppression_{kind}": 500 for kind in LIST_NAMES}
    assert counts == {
        "lists": 2500,
        "segments": 5,
        "recipients": 2345,
        "campaigns": 10,
        **suppressions,
        "suppression_groups": 12,
        "suppression_group_members": sum(10 + 5 * g for g in range(12)),
        "templates": 30,
        "template_versions": sum(n % 3 + 1 for n in range(30)),
        "senders": 3,
        "stats_daily": sync_deps.settings.STATS_BACKFILL_DAYS,
        "singlesend_stats": 10,
        "automation_stats": 5,
    }
    assert any(sleep > 0 for sleep in fake_time.sleeps)  # the injected 429s were waited out
    tables = source_tables(source.schema_name)
    async with sync_deps.engine.connect() as connection:
        stored = await connection.scalar(
            sa.select(sa.func.count()).select_from(tables.objects["recipients"])
        )
        orders = await connection.scalar(
            sa.select(tables.objects["recipients"].c.custom_fields).where(
                tables.objects["recipients"].c.email == "user16@example.com"
            )
        )
    assert stored == 2345
    assert orders == {"num_orders": 16}
