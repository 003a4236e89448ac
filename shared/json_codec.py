"""The JSON codec of both services: orjson for speed, the stdlib where orjson would lose data.

Webhook bodies are read here, `raw` and JSON columns are written as text made here, and
content is compared through `canonical_json` (de-duplication, reused `sg_event_id`s, the
sync's content hashes), so every JSON text the product stores or compares comes from one
place.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import orjson


def canonical_json(event: Any) -> str:
    """JSON text with sorted keys: the same text for the same content, whatever the order."""
    try:
        return orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits, which only the stdlib encodes
        return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dump_json(value: Any) -> str:
    """Compact JSON text, for values bound to JSON columns."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# A number of 19+ digits may be an integer beyond 64 bits, which orjson reads as a float.
# Mapping every digit to "0" makes the first test a plain substring search (~10x faster than a
# regex); only a run that starts a number token (after `:`, `[` or `,`, with blanks or a minus
# between) then sends the body to the stdlib. Runs inside strings, such as the hexadecimal
# message ids SendGrid sends, do not.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
_LONG_NUMBER = re.compile(rb"[:\[,][ \t\r\n]*-?0{19}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(body: bytes) -> Any:
    """Parse JSON fast (orjson), falling back to the stdlib where orjson would round a huge
    integer, so `raw` keeps every number exactly. NaN and Infinity are refused by both."""
    digits = body.translate(_DIGITS_TO_ZERO)
    if _LONG_RUN not in digits or not _LONG_NUMBER.search(digits):
        return orjson.loads(body)
    document = json.loads(body, parse_constant=_refuse_constant)
    try:  # the stdlib, unlike orjson, lets lone surrogate escapes (\ud800) through
        json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate escape, which is not Unicode") from None
    return document


_OBJECTS = msgspec.json.Decoder(list[dict[str, Any]])
_TEXTS = msgspec.json.Decoder(list[msgspec.Raw])


def load_json_objects(body: bytes) -> tuple[list[dict[str, Any]], list[str]] | None:
    """A JSON array of objects, and each object's text exactly as it is in `body`; None for
    anything else, for `load_json` to read or to say what is wrong with it.

    msgspec reads integers of any size exactly and refuses what orjson refuses (invalid
    UTF-8, lone surrogate escapes, numbers beyond a double's range), so it needs no second
    parser; its objects' texts are slices of the body, not encoded again.
    """
    try:
        objects = _OBJECTS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return objects, [str(text, "utf-8") for text in _TEXTS.decode(body)]
