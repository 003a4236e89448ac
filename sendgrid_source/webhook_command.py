"""`sendgrid-source sources webhook`: configure (or re-configure) a source's Event Webhook in
SendGrid with the source's API key, as `POST /sources/{id}/webhook` does."""

from __future__ import annotations

from typing import Annotated

import typer

from sendgrid_source.output import out, settings_or_exit
from sendgrid_source.registry_session import registry_call
from sendgrid_source.source_display import print_management
from shared.registry import SourceRegistry
from shared.schemas import SourcePublic


def sources_webhook(
    id_or_name: Annotated[str, typer.Argument(help="The source's id or name.")],
    adopt: Annotated[
        str | None,
        typer.Option(
            metavar="WEBHOOK_ID",
            help="Take over this existing webhook (it is pointed at the source's URL).",
        ),
    ] = None,
) -> None:
    """Adopt or create the source's webhook, turn signing on, and have SendGrid test it."""
    settings = settings_or_exit()

    async def configure(registry: SourceRegistry) -> SourcePublic:
        source = await registry.rows.find(id_or_name)
        configured, warnings = await registry.configure_webhook(source.id, adopt)
        return registry.public(configured, warnings=warnings)

    public = registry_call(settings, configure)
    console = out()
    console.print(f"source {public.name!r}: webhook", style="green")
    print_management(console, public)
    for warning in public.warnings:
        console.print(f"warning: {warning}", style="yellow")
