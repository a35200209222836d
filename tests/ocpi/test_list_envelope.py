"""A list page read once (`ocpi.protocol.envelope.parse_list_envelope`): each object's JSON text.

It accepts and refuses exactly what `parse_envelope` does (the one documented exception: a number
beyond the double range inside an object is kept as sent), gives the same status, message and
timestamp, and objects whose text is the partner's, compact: a pretty-printed page or one written
with `", "` and `": "` is compacted, and nothing else about the text changes (escapes, number
forms, key order, unknown fields).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from producer.errors import PartnerProtocolError
from producer.ocpi.protocol.envelope import is_compact, parse_envelope, parse_list_envelope

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def outcome(parse: Any, body: bytes) -> Any:
    try:
        envelope = parse(body)
    except PartnerProtocolError as error:
        return ("error", str(error))
    return (envelope.status_code, envelope.status_message, envelope.timestamp)


def items_of(body: bytes) -> list[Any]:
    return [orjson.loads(item) for item in parse_list_envelope(body).items]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.none() | st.floats(allow_nan=False),
    st.none() | st.lists(json_values, max_size=5) | json_values,
    st.none() | st.text(max_size=10) | st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(["compact", "indent", "python"]),
)
def test_it_reads_what_parse_envelope_reads(
    status_code: Any, data: Any, message: Any, layout: str
) -> None:
    document = {"status_code": status_code, "data": data, "status_message": message}
    if layout == "compact":
        body = orjson.dumps(document)
    elif layout == "indent":
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    else:
        body = json.dumps(document).encode()  # Python's ", " and ": "
    assert outcome(parse_list_envelope, body) == outcome(parse_envelope, body)
    if outcome(parse_envelope, body)[0] == "error":
        return
    expected = parse_envelope(body).items
    found = parse_list_envelope(body).items
    assert [orjson.loads(item) for item in found] == expected
    assert all(is_compact(item) for item in found)
    assert all(msgspec.json.format(item, indent=-1) == item for item in found)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
@example(b'{"status_code":1000,"data":[{"a":"\xff"}]}')  # not UTF-8
@example(b'{"status_code":1000,"data":[{"a":"\\ud800"}]}')  # a lone surrogate
@example(b'\xef\xbb\xbf{"status_code":1000}')  # a byte order mark
@example(b'{"status_code":1000,"data":[1,]}')
@example(b'{"status_code":1000.0}')
@example(b'{"status_code":1000,"data":{}}')
@example(b"[]")
@example(b'{"data": [' * 5000 + b"]" * 5000 + b"}")  # nested beyond either parser's depth
@example(b'{"status_code":1000,"data":[' + b"[" * 900 + b"]" * 900 + b"]}")
@example(b"   ")
def test_any_bytes_are_judged_as_parse_envelope_judges_them(body: bytes) -> None:
    assert outcome(parse_list_envelope, body) == outcome(parse_envelope, body)


def test_the_text_is_the_partners_as_sent_only_compacted() -> None:
    body = (
        b'{ "status_code" : 1000,\n  "data" : [\n'
        b'    { "name" : "Caf\\u00e9 \\/ bar, 1: 2", "n" : 1.50E+2, "z" : -0 ,"a" : [ ] }\n'
        b"  ]\n}"
    )
    (item,) = parse_list_envelope(body).items
    assert item == b'{"name":"Caf\\u00e9 \\/ bar, 1: 2","n":1.50E+2,"z":-0,"a":[]}'


def test_a_compact_page_is_sliced_not_rewritten() -> None:
    objects = [{"id": "LOC 1", "name": "Sandbox, B: 1"}, {"id": "2", "x": [1, {"y": None}]}]
    body = orjson.dumps({"data": objects, "status_code": 1000})
    assert parse_list_envelope(body).items == [orjson.dumps(o) for o in objects]


def test_a_number_beyond_the_double_range_is_kept_as_sent() -> None:
    """The one documented difference: the parser into floats refuses the whole page."""
    body = b'{"status_code":1000,"data":[{"id":"1","x_size":1e400}]}'
    with pytest.raises(PartnerProtocolError):
        parse_envelope(body)
    assert parse_list_envelope(body).items == [b'{"id":"1","x_size":1e400}']


@settings(max_examples=300, deadline=None)
@given(json_values, st.lists(st.integers(0, 200), max_size=6), st.sampled_from(" \t\n\r"))
def test_is_compact_never_says_so_of_text_with_whitespace_between_tokens(
    value: Any, where: list[int], space: str
) -> None:
    compact = orjson.dumps(value)
    if is_compact(compact):  # (a string like "a, b" makes it say no: harmless)
        assert msgspec.json.format(compact, indent=-1) == compact
    # Whitespace put between tokens (never inside a string) is always noticed.
    text = compact.decode()
    cuts = _token_boundaries(text)
    if not cuts:
        return
    for position in sorted({cuts[w % len(cuts)] for w in where}, reverse=True):
        text = text[:position] + space + text[position:]
    spaced = text.encode()
    if spaced != compact:
        assert not is_compact(spaced)


def _token_boundaries(text: str) -> list[int]:
    """Positions between JSON tokens of compact text (outside strings), ends included."""
    boundaries, inside, escaped = [0, len(text)], False, False
    for position, char in enumerate(text):
        if inside:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                inside = False
                boundaries.append(position + 1)
        elif char == '"':
            inside = True
            boundaries.append(position)
        elif char in "{}[],:":
            boundaries += [position, position + 1]
    return sorted(set(boundaries))
