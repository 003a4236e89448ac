"""The layout of an event row, defined once: which columns an event table has, in which order,
and where the fields the writers read sit in a record.

An event record is one event as the values of its table's columns, in column order, JSON
values as text: what COPY and executemany take. The parser builds records in this order,
`shared.tables` creates the event tables' columns in this order, and the writers read a
record's id and `raw` at the positions named here, so the three cannot drift apart.

    id | the model's fields (`EventLayout.value_fields`) | custom_args | raw | received_at | origin

The positions of `id`, `custom_args`, `raw`, `received_at` and `origin` are the same in every
event table (the first column and the last four), so the hot paths index records with the
constants below rather than looking anything up per row.
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo

from shared.events import EVENT_TYPES, WebhookEvent

EventRecord = tuple[Any, ...]

ID_AT = 0  # the de-duplication key: `sg_event_id`, or a hash of the content
CUSTOM_ARGS_AT = -4
RAW_AT = -3  # the event as received, JSON text
RECEIVED_AT = -2
ORIGIN_AT = -1  # where it came from: ORIGINS

ID, CUSTOM_ARGS, RAW, RECEIVED, ORIGIN = "id", "custom_args", "raw", "received_at", "origin"

# `webhook`: SendGrid's Event Webhook posted it; `backfill`: read back from Email Logs.
Origin = Literal["webhook", "backfill"]
ORIGINS: tuple[Origin, ...] = ("webhook", "backfill")


def stored_type(field: FieldInfo) -> Any:
    """The Python type a model field's column holds: `Annotated` validators and `| None`
    taken off, generics reduced to their origin (`list`, `dict`)."""
    annotation = field.annotation
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return typing.get_origin(annotation) or annotation


def event_value_fields(model: type[WebhookEvent]) -> tuple[str, ...]:
    """The model's fields in the order of their columns: every field but `timestamp`, then
    `timestamp`."""
    return (*(name for name in model.model_fields if name != "timestamp"), "timestamp")


@dataclass(frozen=True)
class EventLayout:
    """One event table's columns and how a record of it is made from its model."""

    table: str
    model: type[WebhookEvent]
    value_fields: tuple[str, ...]
    # Positions within `value_fields` of the fields stored as JSON (lists and objects).
    json_positions: tuple[int, ...]
    # The model's values in column order, from a validated model's `__dict__` (the models
    # are flat, so their fields are the column values already).
    values_of: Callable[[dict[str, Any]], tuple[Any, ...]]

    @property
    def columns(self) -> tuple[str, ...]:
        return (ID, *self.value_fields, CUSTOM_ARGS, RAW, RECEIVED, ORIGIN)


def _layout(table: str, model: type[WebhookEvent]) -> EventLayout:
    names = event_value_fields(model)
    fields: dict[str, FieldInfo] = model.model_fields
    return EventLayout(
        table,
        model,
        names,
        tuple(i for i, name in enumerate(names) if stored_type(fields[name]) in (list, dict)),
        operator.itemgetter(*names),
    )


# Event table name -> its layout, in the order of `EVENT_TYPES`.
EVENT_LAYOUTS: dict[str, EventLayout] = {
    table: _layout(table, model) for table, model in EVENT_TYPES.values()
}
