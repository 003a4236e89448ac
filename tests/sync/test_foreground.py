"""`sync-now`: a foreground run with live progress and a summary table."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from shared.errors import NotFound
from shared.settings import Settings
from shared.source_rows import Source
from sync_service.foreground import sync_in_foreground
from sync_service.ledger import list_runs
from sync_service.runner import SyncDependencies
from tests.fake_sendgrid.respx_route import FakeAccount


def recording_console() -> Console:
    return Console(file=io.StringIO(), record=True, width=160, color_system=None)


async def test_sync_now_runs_and_prints_every_collection(
    settings: Settings,
    account: FakeAccount,
    source: Source,
    sync_deps: SyncDependencies,
) -> None:
    account.add_list("ca7a3796-e8a8-4029-9ccb-df8937940562", "Newsletter", 100)
    account.forbidden = {"/v3/marketing/singlesends"}
    console = recording_console()

    outcome = await sync_in_foreground(settings, "SendGrid", console)

    assert outcome.status == "partial"
    text = console.export_text()
    assert f"sync {outcome.run_id}: partial" in text
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ")}
    assert "succeeded" in lines["lists"]
    assert " 1 " in lines["lists"]
    assert "empty" in lines["segments"]
    assert "forbidden" in lines["campaigns"]
    [run] = await list_runs(sync_deps.engine, source.id)
    assert (run.id, run.trigger) == (outcome.run_id, "manual")


async def test_sync_now_names_an_unknown_source(
    settings: Settings, account: FakeAccount, source: Source
) -> None:
    with pytest.raises(NotFound, match="'nope'"):
        await sync_in_foreground(settings, "nope", recording_console())
