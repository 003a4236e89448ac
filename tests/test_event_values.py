"""The fast path from an event to its column values gives the pydantic models' answer.

`shared.event_values` reads the values of events that need no coercion through
msgspec structs derived from the models and hands every other event to the model. Both
paths must give the same values, and an event the model refuses must never be accepted by
the fast path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.event_records import event_value_fields
from shared.event_values import values_reader
from shared.events import EVENT_TYPES, WebhookEvent
from tests.webhook_helpers import sample_events

MODELS = sorted({model for _, model in EVENT_TYPES.values()}, key=lambda model: model.__name__)


def model_values(model: type[WebhookEvent], item: dict[str, Any]) -> tuple[Any, ...] | None:
    try:
        event = model.model_validate(item)
    except ValidationError:
        return None
    return tuple(event.__dict__[name] for name in event_value_fields(model))


def fast_values(model: type[WebhookEvent], item: dict[str, Any]) -> tuple[Any, ...] | None:
    reader = values_reader(model, event_value_fields(model))
    assert reader is not None, f"{model.__name__} has no fast path"
    values = reader(item)
    return None if values is None else tuple(values)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_event_model_has_a_fast_path(model: type[WebhookEvent]) -> None:
    assert values_reader(model, event_value_fields(model)) is not None


def test_the_documentation_samples_take_the_fast_path_with_the_models_values() -> None:
    taken = 0
    for item in sample_events():
        model = EVENT_TYPES[item["event"]][1]
        fast = fast_values(model, item)
        if fast is not None:
            taken += 1
            assert fast == model_values(model, item), item["event"]
    # The samples are what SendGrid sends: all of them need no coercion.
    assert taken == len(sample_events())


@pytest.mark.parametrize(
    ("model", "item"),
    [
        (EVENT_TYPES["open"][1], {"event": "open", "email": "a@example.com"}),  # no timestamp
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": None}),
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": True}),
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": 1e300}),
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": 1, "asm_group_id": 2**63}),
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": 1, "sg_machine_open": 2}),
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": 1, "email": ["a"]}),
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": 1, "newsletter": []}),
        (EVENT_TYPES["dropped"][1], {"event": "dropped", "timestamp": 1, "smtp_id": "<a>"}),
        (EVENT_TYPES["dropped"][1], {"event": "dropped", "timestamp": 1, "category": [1]}),
        (EVENT_TYPES["deferred"][1], {"event": "deferred", "timestamp": 1, "attempt": "١"}),
        (EVENT_TYPES["open"][1], {"event": "open", "timestamp": 1, "phase_id": 7}),
        (EVENT_TYPES["processed"][1], {"event": "processed", "timestamp": 1, "pool": {"id": 1.5}}),
        (EVENT_TYPES["click"][1], {"event": "click", "timestamp": 1, "url_offset": True}),
    ],
    ids=[
        "missing timestamp", "null timestamp", "boolean timestamp", "timestamp out of range",
        "integer beyond 64 bits", "tls-like flag of 2", "list for text", "list for object",
        "field name beside its alias", "non-text category", "non-ASCII digit",
        "number for text", "fraction in a nested object", "boolean for a nested object",
    ],
)  # fmt: skip
def test_values_that_need_the_model_are_left_to_it(
    model: type[WebhookEvent], item: dict[str, Any]
) -> None:
    assert fast_values(model, item) is None


def test_the_lenient_values_are_read_as_the_model_reads_them() -> None:
    model = EVENT_TYPES["deferred"][1]
    item = {
        "event": "deferred", "timestamp": 1_700_000_000_123, "attempt": "3", "tls": 1,
        "category": "one", "sg_user_id": 42, "from": "x@example.com",
    }  # fmt: skip

    fast = fast_values(model, item)

    assert fast is not None
    assert fast == model_values(model, item)


@pytest.mark.parametrize(
    ("kind", "item"),
    [
        ("processed", {"pool": {"name": "main", "id": 210}, "pool_name": "ignored"}),
        ("processed", {"pool": {"id": "7"}}),
        ("processed", {"pool": None, "pool_name": "kept", "pool_id": "3"}),
        ("click", {"url_offset": {"index": 2, "type": "html"}, "url_offset_type": "text"}),
        ("click", {"url_offset": "4", "url_offset_type": "text"}),
        ("click", {"url_offset": 1.5, "url_offset_index": 3}),
    ],
    ids=["pool", "pool-id-as-text", "null-pool", "url-offset", "url-offset-as-text", "float"],
)
def test_nested_objects_are_flattened_as_the_model_flattens_them(
    kind: str, item: dict[str, Any]
) -> None:
    model = EVENT_TYPES[kind][1]
    event = {"event": kind, "timestamp": 1_700_000_000, **item}

    fast = fast_values(model, event)

    assert fast is not None
    assert fast == model_values(model, event)


# Values of every JSON kind, including the awkward ones, for every field of every model.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, 1_700_000_000, 1_700_000_000_000, -1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["0", "1", "12", "-3", " 4", "1.5", "true", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


# Values as SendGrid sends them (text, small integers, 0/1 flags, lists of text), so that
# many generated events pass the fast path and are compared, not only refused.
usual_values = (
    st.none()
    | st.text(max_size=8)
    | st.integers(min_value=0, max_value=2**63)
    | st.sampled_from([0, 1, "3", True, False])
    | st.lists(st.text(max_size=4), max_size=3)
)

# The objects SendGrid nests (`pool`, `url_offset`), with their members or without.
nested_values = st.dictionaries(
    st.sampled_from(["name", "id", "index", "type", "other"]),
    json_values | usual_values,
    max_size=3,
)


@st.composite
def events(draw: st.DrawFn) -> tuple[type[WebhookEvent], dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
    model = EVENT_TYPES[kind][1]
    keys = sorted(
        {field.alias or name for name, field in model.model_fields.items()}
        | {"smtp_id", "from_address", "pool", "url_offset", "custom"}
    )
    values = usual_values if draw(st.booleans()) else json_values
    item = draw(st.dictionaries(st.sampled_from(keys), values, max_size=8))
    for key in ("pool", "url_offset"):
        if draw(st.booleans()):
            item[key] = draw(nested_values)
    item["event"] = kind
    if draw(st.booleans()):
        item["timestamp"] = draw(st.integers(min_value=0, max_value=2_000_000_000))
    return model, item


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_on_any_event_the_fast_path_agrees_with_the_model_or_defers_to_it(
    case: tuple[type[WebhookEvent], dict[str, Any]],
) -> None:
    model, item = case
    fast = fast_values(model, item)
    if fast is not None:
        assert fast == model_values(model, item)
