"""An event's column values without pydantic, for the events that need no coercion.

Validating an event with its pydantic model costs about 8 µs, most of it calling the
models' lenient validators in Python and building a model only to read its fields back;
reading the values here costs about 5 µs (parse_body: 16.3 → 14.1 µs an event, medians of
seven interleaved rounds in one process).
Nearly every event SendGrid sends already holds values of its columns' types (text as
strings, numbers as integers, `tls` as 0/1, categories as a string or a list of strings), and
for those the model's answer is known: the values themselves. `values_reader` reads them
straight from the event's dict and returns None for anything else, such as a number where
text is expected, a missing timestamp or a string holding digits for an integer, so that
the model validates that event and gives its exact answer or its error.

The readers are derived from the models' fields, so a field added to a model is read here
too; a field of a kind this module does not know makes every event of its model go through
pydantic instead (`values_reader` returns None).

`tests/test_event_values.py` checks that both paths give the same values, on the documentation's
samples and on generated events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic.fields import FieldInfo

from shared.events import (
    WebhookEvent,
    category_list,
    lenient_bool,
    lenient_int,
    to_utc,
)

ValuesReader = Callable[[dict[str, Any]], tuple[Any, ...] | None]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# What a field holds, as read from its annotation and validators.
_TEXT, _INT, _BOOL, _TIME, _CATEGORIES, _OBJECT, _EVENT, _REFUSE = range(8)

_KIND_OF_VALIDATOR = {
    to_utc: _TIME,
    lenient_int: _INT,
    lenient_bool: _BOOL,
    category_list: _CATEGORIES,
}


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


def values_reader(model: type[WebhookEvent], names: tuple[str, ...]) -> ValuesReader | None:
    """A reader of the values of `names` (the model's fields, in column order) from an event
    dict, or None if some field is of a kind only the model can validate."""
    fields: dict[str, FieldInfo] = model.model_fields
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or any(
        decorator.info.mode != "before" for decorator in decorators.model_validators.values()
    ):
        return None
    slots: dict[str, tuple[int, int]] = {}
    defaults: list[Any] = []
    for position, name in enumerate(names):
        kind = _kind(name, fields[name])
        if kind is None:
            return None
        alias = fields[name].alias
        slots[alias or name] = (position, kind)
        if alias:
            # With an alias the model also accepts the field's own name (`populate_by_name`):
            # an event that uses it goes to the model, which knows which of the two wins.
            slots[name] = (position, _REFUSE)
        defaults.append([] if kind == _CATEGORIES else None)
    before = tuple(
        getattr(model, decorator.cls_var_name) for decorator in decorators.model_validators.values()
    )
    return _reader(slots, tuple(defaults), names.index("timestamp"), before)


class _Refused(Exception):
    """The value needs the model: coercion this module does not do, or an error."""


def _converted(kind: int, value: Any) -> Any:
    value_type = type(value)
    if kind in (_TEXT, _EVENT):
        if value_type is str:
            return value
        if value_type is int and _INT64_MIN <= value <= _INT64_MAX:
            return str(value)  # what `coerce_numbers_to_str` makes of it
    elif kind == _INT:
        if value_type is str and value.isascii() and value.isdigit():
            value, value_type = int(value), int  # as `lenient_int` reads "3"
        if value_type is int and _INT64_MIN <= value <= _INT64_MAX:
            return value
    elif kind == _BOOL:
        if value_type is bool:
            return value
        if value_type is int and (value == 0 or value == 1):
            return value == 1
    elif kind == _TIME:
        if value_type is int or value_type is float:
            try:
                return to_utc(value)
            except ValueError:
                pass
    elif kind == _CATEGORIES:
        if value_type is str:
            return [value]
        if value_type is list and all(type(entry) is str for entry in value):
            return value
    elif kind == _OBJECT and value_type is dict:
        return value
    raise _Refused


def _reader(
    slots: dict[str, tuple[int, int]],
    defaults: tuple[Any, ...],
    timestamp_at: int,
    before: tuple[Callable[[Any], Any], ...],
) -> ValuesReader:
    # The event's own keys are walked, not the model's fields: an event holds about a dozen
    # keys, a model about thirty fields, most of them absent. Text, the usual case, is
    # settled without a call.
    text_at = {key: position for key, (position, kind) in slots.items() if kind == _TEXT}
    other = {key: slot for key, slot in slots.items() if key not in text_at}

    def read(item: dict[str, Any]) -> tuple[Any, ...] | None:
        for validator in before:  # the model's own flattening of `pool`, `url_offset`
            item = validator(item)
        values = list(defaults)
        try:
            for key, value in item.items():
                position = text_at.get(key)
                if position is not None and (value is None or type(value) is str):
                    values[position] = value
                    continue
                slot = other.get(key) if position is None else slots[key]
                if slot is None:  # a custom arg, or a key the model ignores
                    continue
                position, kind = slot
                if value is not None:
                    values[position] = _converted(kind, value)
                elif kind in (_TIME, _EVENT, _REFUSE):
                    return None  # the model says what is wrong, or which key wins
        except _Refused:
            return None
        if values[timestamp_at] is None:  # required: the model says so
            return None
        return tuple(values)

    return read
