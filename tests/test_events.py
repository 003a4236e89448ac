"""Reading webhook bodies: exact integers beyond 64 bits, the fast path kept for long digit
runs inside strings, and records that match their tables' columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest_service.writer import lane_of_tables
from shared.event_parsing import parse_body
from shared.event_records import CUSTOM_ARGS_AT, EVENT_LAYOUTS, ID_AT, RAW_AT, RECEIVED_AT
from shared.events import EVENT_TABLES, KNOWN_KEYS
from shared.json_codec import load_json
from shared.tables import source_tables
from tests.webhook_helpers import body_of, sample_events

HUGE = 123456789012345678901234567890


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'[{"event":"open","n":%d}]' % HUGE, HUGE),
        (b'[{"event": "open", "n":  -%d}]' % HUGE, -HUGE),
        (b'[{"event":"open","n":[1,%d]}]' % HUGE, [1, HUGE]),
        (b'[{"event":"open","n":\r\n\t%d}]' % HUGE, HUGE),
    ],
)
def test_an_integer_beyond_64_bits_is_read_exactly(body: bytes, value: object) -> None:
    assert load_json(body) == [{"event": "open", "n": value}]


def test_a_long_digit_run_inside_a_string_stays_on_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("the stdlib parser was used")

    monkeypatch.setattr("shared.json_codec.json.loads", refuse)
    body = b'[{"sg_message_id":"14c5d75ce93.1234567890123456789012.filter0001"}]'

    assert load_json(body) == [{"sg_message_id": "14c5d75ce93.1234567890123456789012.filter0001"}]


def test_parsed_records_line_up_with_their_tables_columns() -> None:
    received_at = datetime.now(UTC)
    events = sample_events()
    batch = parse_body(body_of(events), received_at)
    tables = source_tables("records_check")

    assert batch.rejected == []
    assert batch.event_count == len(events)
    for table_name, records in batch.rows.items():
        names = [column.name for column in tables.events[table_name].columns]
        assert names == list(EVENT_LAYOUTS[table_name].columns)
        for record in records:
            assert len(record) == len(names), table_name
            row = dict(zip(names, record, strict=True))
            assert record[ID_AT] == row["id"]
            assert record[RAW_AT] == row["raw"]
            assert record[CUSTOM_ARGS_AT] == row["custom_args"]
            assert record[RECEIVED_AT] == row["received_at"] == received_at
            raw = json.loads(row["raw"])
            assert raw in events
            assert row["event"] == raw["event"]
            assert json.loads(row["custom_args"]) == {
                key: value for key, value in raw.items() if key not in KNOWN_KEYS
            }


@pytest.mark.parametrize("lanes", [1, 2, 3, 12])
def test_every_event_table_has_one_lane_and_the_busy_tables_are_spread(lanes: int) -> None:
    assignment = lane_of_tables(lanes)

    assert set(assignment) == set(EVENT_TABLES)
    assert set(assignment.values()) == set(range(min(lanes, len(EVENT_TABLES))))
    if lanes >= 2:
        assert assignment["processed"] != assignment["delivered"]
