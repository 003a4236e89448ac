"""JSON reading of webhook bodies: exact integers beyond 64 bits, and the fast path kept for
long digit runs inside strings."""

from __future__ import annotations

import pytest

from shared.events import load_json

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

    monkeypatch.setattr("shared.events.json.loads", refuse)
    body = b'[{"sg_message_id":"14c5d75ce93.1234567890123456789012.filter0001"}]'

    assert load_json(body) == [{"sg_message_id": "14c5d75ce93.1234567890123456789012.filter0001"}]
