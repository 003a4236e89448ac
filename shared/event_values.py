"""An event's column values through msgspec, for the events that need no coercion.

Validating an event with its pydantic model means calling the models' lenient validators in
Python and building a model only to read its fields back. Nearly every event SendGrid sends
already holds values of its columns' types (text as strings, numbers as integers, `tls` as
0/1, categories as a string or a list of strings), and for those the model's answer is
known. Here each model has a msgspec struct derived from its fields, whose types admit only
such values; `msgspec.convert` checks an event dict against it in compiled code, and the few
conversions the models make (unix time to a datetime, 0/1 to a boolean, a string of digits
to an integer, a bare category to a list, the nested objects of `WebhookEvent.nested`) are
applied to the values it gives. Anything the struct refuses, such as a number where text is
expected, a missing timestamp, an integer beyond 64 bits or a field named both by its alias
and by its own name, makes the reader return None, and the model validates that event and
gives its exact answer or its error.

The structs are derived from the models' fields, so a field added to a model is read here
too; a field of a kind this module does not know, or a validator other than the nested
objects' flattening, makes every event of its model go through pydantic instead
(`values_reader` returns None).

`tests/test_event_values.py` checks that both paths give the same values, on the
documentation's samples and on generated events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from pydantic.fields import FieldInfo

from shared.events import (
    WebhookEvent,
    category_list,
    lenient_bool,
    lenient_int,
    to_utc,
)

# The values in column order, as the model has them, or None when the model must say.
ValuesReader = Callable[[dict[str, Any]], list[Any] | None]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_Int64 = Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=_INT64_MAX)]

# What a field holds, as read from its annotation and validators.
_TEXT, _INT, _BOOL, _TIME, _CATEGORIES, _OBJECT, _EVENT = range(7)

_KIND_OF_VALIDATOR = {
    to_utc: _TIME,
    lenient_int: _INT,
    lenient_bool: _BOOL,
    category_list: _CATEGORIES,
}

# The values each kind takes in the struct: exactly those whose model value is known below.
_STRUCT_TYPE: dict[int, Any] = {
    _TEXT: str | None,
    _INT: _Int64 | str | None,  # a string only of ASCII digits, as `lenient_int` reads "3"
    _BOOL: bool | _Int64 | None,  # 0 or 1 only
    _TIME: _Int64 | float,  # required, as in the models
    _CATEGORIES: str | list[str] | None,
    _OBJECT: dict[str, Any] | None,
    _EVENT: str,
}

# A timestamp above this is in milliseconds, as `to_utc` reads it.
_MILLISECONDS_FROM = 100_000_000_000


class _Refused(Exception):
    """The value needs the model: coercion this module does not do, or an error."""


def _kind(name: str, field: FieldInfo) -> int | None:
    validators = [getattr(item, "func", None) for item in field.metadata]
    if len(validators) == 1 and validators[0] in _KIND_OF_VALIDATOR:
        return _KIND_OF_VALIDATOR[validators[0]]
    if validators:
        return None
    if name == "event" and field.annotation is str:
        return _EVENT
    if field.annotation == str | None:
        return _TEXT
    if field.annotation == dict[str, Any] | None:
        return _OBJECT
    return None


def _int(value: str) -> int:
    """A string of ASCII digits as `lenient_int` reads it, within a BIGINT's range."""
    if not (value.isascii() and value.isdigit()):
        raise _Refused
    number = int(value)
    if number > _INT64_MAX:
        raise _Refused
    return number


def _bool(value: int) -> bool:
    if value == 0 or value == 1:
        return value == 1
    raise _Refused


def _time(value: int | float) -> datetime:
    if type(value) is int and 0 <= value <= _MILLISECONDS_FROM:
        return datetime.fromtimestamp(value, UTC)  # what `to_utc` makes of it
    try:
        moment = to_utc(value)
    except ValueError:
        raise _Refused from None
    assert isinstance(moment, datetime)  # a number always becomes one
    return moment


def _member(kind: int, value: Any) -> Any:
    """A nested object's member as its field's model reads it. No struct checked it, so
    every type is checked here; `values_reader` admits text and integer fields only."""
    value_type = type(value)
    if value is None:
        return None
    if value_type is int and not _INT64_MIN <= value <= _INT64_MAX:
        raise _Refused
    if kind == _TEXT:
        if value_type is str:
            return value
        if value_type is int:
            return str(value)  # what `coerce_numbers_to_str` makes of it
    elif kind == _INT:
        if value_type is int:
            return value
        if value_type is str:
            return _int(value)
    raise _Refused


def values_reader(model: type[WebhookEvent], names: tuple[str, ...]) -> ValuesReader | None:
    """A reader of the values of `names` (the model's fields, in column order) from an event
    dict, or None if some field is of a kind only the model can validate."""
    fields: dict[str, FieldInfo] = model.model_fields
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or set(decorators.model_validators) - {"_flatten_nested"}:
        return None
    found = {name: _kind(name, fields[name]) for name in names}
    kinds = {name: kind for name, kind in found.items() if kind is not None}
    if len(kinds) != len(found):
        return None
    targets = [field for entry in model.nested for field in entry.fields.values()]
    targets += [entry.scalar for entry in model.nested if entry.scalar is not None]
    if any(kinds[field] not in (_TEXT, _INT) for field in targets):
        return None
    struct = msgspec.defstruct(
        f"{model.__name__}Values",
        [(name, _STRUCT_TYPE[kind], _default(kind, fields[name])) for name, kind in kinds.items()],
        kw_only=True,
        frozen=True,
        gc=False,
    )
    positions: dict[int, list[int]] = {kind: [] for kind in _STRUCT_TYPE}
    for position, kind in enumerate(kinds.values()):
        positions[kind].append(position)
    [time_at] = positions[_TIME]
    # (position, the one type the struct lets through there that the model converts, how)
    conversions: list[tuple[int, type, Callable[[Any], Any]]] = [
        (position, str, _int) for position in positions[_INT]
    ]
    conversions += [(position, int, _bool) for position in positions[_BOOL]]
    # With an alias the model also accepts the field's own name (`populate_by_name`): an
    # event that uses it goes to the model, which knows which of the two wins.
    own_names = tuple(name for name in names if fields[name].alias)
    nested = tuple(
        (
            entry.key,
            tuple((key, names.index(field), kinds[field]) for key, field in entry.fields.items()),
            None if entry.scalar is None else (names.index(entry.scalar), kinds[entry.scalar]),
        )
        for entry in model.nested
    )
    return _reader(
        struct,
        time_at,
        tuple(positions[_CATEGORIES]),
        tuple(conversions),
        own_names,
        nested,
    )


def _default(kind: int, field: FieldInfo) -> Any:
    if kind in (_TIME, _EVENT):  # required
        return msgspec.field(name=field.alias) if field.alias else msgspec.NODEFAULT
    return msgspec.field(default=None, name=field.alias)


# A nested object's key; (member, position, kind) of each of its members; (position, kind)
# of the field a bare number or string in its place goes to.
_NestedReading = tuple[str, tuple[tuple[str, int, int], ...], tuple[int, int] | None]


def _reader(
    struct: type[msgspec.Struct],
    time_at: int,
    categories_at: tuple[int, ...],
    conversions: tuple[tuple[int, type, Callable[[Any], Any]], ...],
    own_names: tuple[str, ...],
    nested: tuple[_NestedReading, ...],
) -> ValuesReader:
    convert, values_of = msgspec.convert, msgspec.structs.astuple  # fields in column order

    def read(item: dict[str, Any]) -> list[Any] | None:
        for name in own_names:
            if name in item:
                return None
        try:
            values = list(values_of(convert(item, struct)))
            values[time_at] = _time(values[time_at])
            for position in categories_at:
                value = values[position]
                values[position] = [] if value is None else [value] if type(value) is str else value
            for position, convertible, conversion in conversions:
                value = values[position]
                if type(value) is convertible:
                    values[position] = conversion(value)
            for key, members, scalar in nested:
                value = item.get(key)
                if type(value) is dict:
                    for member, position, kind in members:
                        values[position] = _member(kind, value.get(member))
                elif scalar is not None and isinstance(value, int | str):  # booleans too
                    values[scalar[0]] = _member(scalar[1], value)
        except (msgspec.ValidationError, _Refused):
            return None
        return values

    return read
