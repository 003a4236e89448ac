"""`sendgrid-source sources ...`: the registry API's operations on the command line.

Each command goes through `SourceRegistry`, as the HTTP API does, so validation, the API key
check against SendGrid and the errors are the same.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from rich.table import Table

from sendgrid_source.output import fail, out, settings_or_exit
from sendgrid_source.registry_session import registry_call
from sendgrid_source.source_display import print_management, print_source
from sendgrid_source.webhook_command import sources_webhook
from shared.collections import NAMES
from shared.errors import NotFound
from shared.registry import SourceRegistry
from shared.schemas import SourceCreate, SourcePublic, SourceUpdate
from shared.source_rows import Source

sources_app = typer.Typer(
    help="Register, show, change, list and remove SendGrid sources.", no_args_is_help=True
)

M = TypeVar("M", bound=BaseModel)

IdOrName = Annotated[str, typer.Argument(help="The source's id or name.")]


class RegionChoice(StrEnum):
    GLOBAL = "global"
    EU = "eu"


_OPTION_NAMES = {
    "name": "NAME",
    "api_key": "--api-key",
    "webhook_verification_key": "--verification-key",
    "region": "--region",
    "sync_interval": "--interval",
    "adopt_webhook_id": "--adopt",
    "collections": "--collections",
    "stats_timezone": "--stats-timezone",
}

_COLLECTIONS_OPTION = (
    "The collections to sync, comma-separated (default: all): " + ", ".join(NAMES) + "."
)
_TIMEZONE_OPTION = (
    "The time zone of the SendGrid account's settings (IANA name, e.g. America/New_York), "
    "in which SendGrid counts its daily statistics."
)


def _collection_list(value: str | None) -> list[str] | None:
    """`--collections a,b` as a list; the names are checked by the request model."""
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def _option_error(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"].removeprefix("Value error, ").removeprefix(f"{field}: ")
    return f"{_OPTION_NAMES.get(field, field)}: {message}"


def _request(model: type[M], fields: dict[str, Any]) -> M:
    try:
        return model(**fields)
    except ValidationError as exc:
        # Only each error's place and message: pydantic's full text repeats the input (the key).
        fail("; ".join(_option_error(error) for error in exc.errors()))


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="e.g. SendGrid; its schema is named after it")],
    api_key: Annotated[
        str,
        typer.Option(
            prompt="SendGrid API key",
            hide_input=True,
            help="A key with read access; asked for (hidden) when omitted.",
        ),
    ],
    verification_key: Annotated[
        str | None,
        typer.Option(help="The Signed Event Webhook's verification key (base64)."),
    ] = None,
    region: Annotated[RegionChoice, typer.Option(help="The account's data region.")] = (
        RegionChoice.GLOBAL
    ),
    interval: Annotated[
        str | None, typer.Option(help="Time between syncs, e.g. 3h; default SYNC_INTERVAL.")
    ] = None,
    collections: Annotated[str | None, typer.Option(help=_COLLECTIONS_OPTION)] = None,
    stats_timezone: Annotated[str, typer.Option(help=_TIMEZONE_OPTION)] = "UTC",
    configure_webhook: Annotated[
        bool,
        typer.Option(
            "--configure-webhook",
            help="Also configure the Event Webhook in SendGrid with this key: adopt or "
            "create it, turn signing on, and have SendGrid test it.",
        ),
    ] = False,
) -> None:
    """Register a SendGrid account: checks the key and creates the source's schema."""
    settings = settings_or_exit()
    request = _request(
        SourceCreate,
        {
            "name": name,
            "api_key": api_key,
            "webhook_verification_key": verification_key,
            "region": region.value,
            "sync_interval": interval,
            "collections": _collection_list(collections),
            "stats_timezone": stats_timezone,
            "configure_webhook": configure_webhook,
        },
    )

    async def create(registry: SourceRegistry) -> tuple[SourcePublic, list[str]]:
        source, warnings = await registry.create(request)
        return registry.public(source), warnings

    public, warnings = registry_call(settings, create)
    console = out()
    console.print(f"added source {public.name!r}", style="green")
    console.print(f"  id           {public.id}")
    console.print(f"  schema       {public.schema_name}")
    console.print(f"  region       {public.region}")
    console.print(f"  webhook URL  {public.webhook_url}")
    console.print(f"  signed       {'yes' if public.webhook_signed else 'no'}")
    print_management(console, public)
    for warning in warnings:
        console.print(f"warning: {warning}", style="yellow")
    if public.webhook_management is None or not public.webhook_management.managed:
        console.print(
            "In SendGrid: Settings > Mail Settings > Event Webhook, paste the webhook URL "
            "(or run `sendgrid-source sources webhook` to have it configured)."
        )


sources_app.command("webhook")(sources_webhook)


@sources_app.command("list")
def sources_list() -> None:
    """Every active source, with its schema and webhook URL."""
    settings = settings_or_exit()

    async def rows(registry: SourceRegistry) -> list[SourcePublic]:
        return [registry.public(source) for source in await registry.rows.list_sources()]

    sources = registry_call(settings, rows)
    if not sources:
        out().print("no sources yet: add one with `sendgrid-source sources add NAME`")
        return
    table = Table("name", "schema", "region")
    # On a narrow terminal the URL folds onto more lines rather than being cut short.
    table.add_column("webhook URL", overflow="fold")
    table.add_column("signed")
    for source in sources:
        signed = "yes" if source.webhook_signed else "no"
        table.add_row(source.name, source.schema_name, source.region, source.webhook_url, signed)
    out().print(table)


@sources_app.command("show")
def sources_show(
    id_or_name: IdOrName,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly what GET /sources/{id} answers.")
    ] = False,
) -> None:
    """One active source, with what its webhook has received (never its API key)."""
    settings = settings_or_exit()

    async def describe(registry: SourceRegistry) -> SourcePublic:
        return await registry.describe((await registry.rows.find(id_or_name)).id)

    public = registry_call(settings, describe)
    if as_json:
        out().print(public.model_dump_json(by_alias=True, indent=2), soft_wrap=True)
        return
    out().print(f"source {public.name!r}", style="bold")
    print_source(out(), public)


@sources_app.command("update")
def sources_update(
    id_or_name: IdOrName,
    name: Annotated[
        str | None, typer.Option(help="Rename (and re-schema) it; only while it holds no data.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Rotate the API key (checked with SendGrid first).")
    ] = None,
    ask_api_key: Annotated[
        bool, typer.Option("--ask-api-key", help="Ask for the new API key (hidden).")
    ] = False,
    verification_key: Annotated[
        str | None, typer.Option(help="Set the Signed Event Webhook's verification key.")
    ] = None,
    clear_verification_key: Annotated[
        bool, typer.Option("--clear-verification-key", help="Stop checking signatures.")
    ] = False,
    region: Annotated[RegionChoice | None, typer.Option(help="The account's data region.")] = None,
    interval: Annotated[str | None, typer.Option(help="Time between syncs, e.g. 3h.")] = None,
    default_interval: Annotated[
        bool, typer.Option("--default-interval", help="Sync every SYNC_INTERVAL again.")
    ] = False,
    collections: Annotated[str | None, typer.Option(help=_COLLECTIONS_OPTION)] = None,
    all_collections: Annotated[
        bool, typer.Option("--all-collections", help="Sync every collection again.")
    ] = False,
    stats_timezone: Annotated[str | None, typer.Option(help=_TIMEZONE_OPTION)] = None,
    webhook_repair: Annotated[
        bool | None,
        typer.Option(
            "--webhook-repair/--no-webhook-repair",
            help="Repair drift of the managed webhook's settings when it is checked.",
        ),
    ] = None,
) -> None:
    """Change a source as PATCH /sources/{id} does: only the options given change."""
    settings = settings_or_exit()
    if api_key is not None and ask_api_key:
        fail("give either --api-key or --ask-api-key, not both")
    if verification_key is not None and clear_verification_key:
        fail("give either --verification-key or --clear-verification-key, not both")
    if interval is not None and default_interval:
        fail("give either --interval or --default-interval, not both")
    if collections is not None and all_collections:
        fail("give either --collections or --all-collections, not both")
    if ask_api_key:
        api_key = typer.prompt("New SendGrid API key", hide_input=True)
    # Only the options given become fields: an absent field is left as it is.
    fields: dict[str, Any] = {
        key: value
        for key, value in {
            "name": name,
            "api_key": api_key,
            "webhook_verification_key": verification_key,
            "region": region.value if region else None,
            "sync_interval": interval,
            "webhook_repair": webhook_repair,
            "collections": _collection_list(collections),
            "stats_timezone": stats_timezone,
        }.items()
        if value is not None
    }
    if clear_verification_key:
        fields["webhook_verification_key"] = None
    if default_interval:
        fields["sync_interval"] = None
    if all_collections:
        fields["collections"] = None
    if not fields:
        fail("nothing to change: give at least one option (see --help)")
    request = _request(SourceUpdate, fields)

    async def update(registry: SourceRegistry) -> SourcePublic:
        source = await registry.rows.find(id_or_name)
        updated, warnings = await registry.update(source.id, request)
        return registry.public(updated, warnings=warnings)

    public = registry_call(settings, update)
    out().print(f"updated source {public.name!r}", style="green")
    print_source(out(), public)


async def _find(registry: SourceRegistry, id_or_name: str, drop_data: bool) -> Source:
    source = await registry.rows.find(id_or_name, include_removed=True)
    if source.deleted_at is not None and not drop_data:
        raise NotFound(
            f"source {source.name!r} is already removed; its data is still in schema "
            f"{source.schema_name!r}: add --drop-data to delete it"
        )
    return source


@sources_app.command("remove")
def sources_remove(
    id_or_name: IdOrName,
    drop_data: Annotated[bool, typer.Option(help="Also drop its schema and all its data.")] = False,
    remove_webhook: Annotated[
        bool,
        typer.Option(
            "--remove-webhook", help="Also delete the webhook sendgrid-source created in SendGrid."
        ),
    ] = False,
    remove_adopted_webhook: Annotated[
        bool,
        typer.Option(
            "--remove-adopted-webhook",
            help="With --remove-webhook: delete it even if it was adopted, not created.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop a source. Its data stays in its schema unless --drop-data is given."""
    settings = settings_or_exit()
    if remove_adopted_webhook and not remove_webhook:
        fail("--remove-adopted-webhook goes with --remove-webhook")
    source = registry_call(settings, lambda registry: _find(registry, id_or_name, drop_data))
    if drop_data:
        question = f"Remove {source.name!r} and DROP schema {source.schema_name!r} with its data?"
    else:
        question = f"Stop {source.name!r}? Its data stays in schema {source.schema_name!r}."
    if not yes:
        typer.confirm(question, abort=True)
    removed = registry_call(
        settings,
        lambda registry: registry.remove(
            source.id,
            drop_data=drop_data,
            remove_webhook=remove_webhook,
            remove_adopted_webhook=remove_adopted_webhook,
        ),
    )
    done = "removed, data dropped" if drop_data else "removed; its data stays in the schema"
    out().print(f"source {source.name!r}: {done}", style="green")
    out().print(f"webhook: {removed.webhook}")
