"""`sendgrid-source completeness SOURCE`: the last days reconciled against SendGrid's daily
statistics, one verdict line a day, as `GET /sources/{id}/completeness` answers them;
`--check` reconciles now first, as `POST` does.

Exits 1 when a day shown has events missing or the last reconciliation could not run, so a
scheduled script can tell a complete warehouse from one that is not (or not known to be).
"""

from __future__ import annotations

from typing import Annotated

import typer

from sendgrid_source.output import out, settings_or_exit
from sendgrid_source.registry_session import registry_call
from shared.completeness_table import completeness_report
from shared.reconciliation import Reconciliation
from shared.registry import SourceRegistry
from shared.schemas import CompletenessReport

_STYLES = {"complete": "green", "missing": "red", "more_stored": "yellow"}


def completeness(
    id_or_name: Annotated[str, typer.Argument(help="The source's id or name.")],
    days: Annotated[
        int, typer.Option(min=1, max=366, help="How many of the most recent days to show.")
    ] = 7,
    check: Annotated[
        bool,
        typer.Option("--check", help="Reconcile now with SendGrid's statistics, then show."),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print exactly what GET /sources/{id}/completeness answers."),
    ] = False,
) -> None:
    """Is every event of the last days stored? Each day's verdict against SendGrid's stats."""
    settings = settings_or_exit()

    async def read(registry: SourceRegistry) -> tuple[str, CompletenessReport]:
        source = await registry.rows.find(id_or_name)
        if check:
            await Reconciliation(
                registry.engine, registry.settings, registry.http, registry.secrets, registry.counts
            ).reconcile(source)
            source = await registry.rows.get(source.id)
        return source.name, await completeness_report(registry.engine, source, days)

    name, report = registry_call(settings, read)
    console = out()
    if as_json:
        console.print(report.model_dump_json(indent=2), soft_wrap=True)
    else:
        checked = (
            report.checked_at.isoformat(sep=" ", timespec="seconds")
            if report.checked_at
            else "never"
        )
        console.print(f"source {name!r}: days in {report.stats_timezone}, last check {checked}")
        if report.error:
            console.print(f"warning: {report.error}", style="yellow")
        if not report.days:
            console.print(
                "no day reconciled yet: a day is once it ended RECONCILE_SETTLE ago "
                "(48 h by default) and the source was collecting all of it"
            )
        for day in report.days:
            console.print(f"  {day.day.isoformat()}  {day.verdict}", style=_STYLES[day.status])
    if report.error or any(day.status == "missing" for day in report.days):
        raise typer.Exit(1)
