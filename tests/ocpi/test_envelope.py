"""The OCPI envelope and the count headers (ocpi/protocol/envelope.py): tables, properties, fuzz.

Whatever bytes a partner sends, the parser returns an Envelope or raises PartnerProtocolError with
a short one-line message; whatever a partner puts in `X-Total-Count`/`X-Limit`, the result is a
sane non-negative int or None.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.errors import PartnerProtocolError
from producer.ocpi.protocol.envelope import (
    MAX_COUNT_HEADER,
    Envelope,
    parse_count_header,
    parse_envelope,
)

TIMESTAMP = "2024-05-01T12:00:00Z"


def body(document: Any) -> bytes:
    return orjson.dumps(document)


# --- parse_envelope: accepted ----------------------------------------------------------------


def test_list_page() -> None:
    envelope = parse_envelope(
        body(
            {
                "data": [{"id": "1"}, {"id": "2"}],
                "status_code": 1000,
                "status_message": "Success",
                "timestamp": TIMESTAMP,
            }
        )
    )
    assert envelope == Envelope(
        status_code=1000,
        status_message="Success",
        timestamp=TIMESTAMP,
        items=[{"id": "1"}, {"id": "2"}],
        data_value=[{"id": "1"}, {"id": "2"}],
    )
    assert envelope.is_success


@pytest.mark.parametrize(
    ("document", "items"),
    [
        ({"status_code": 1000, "data": []}, []),
        ({"status_code": 1000}, []),  # 2.2.1-d2 / 2.3.0: data may be absent
        ({"status_code": 1000, "data": None}, []),
        ({"status_code": 1000, "data": [1, "x", None, [], {}]}, [1, "x", None, [], {}]),
        # A failure status with a non-list data: kept as sent, no items.
        ({"status_code": 2001, "data": {"error": "x"}}, []),
        ({"status_code": 3000, "data": "oops"}, []),
        ({"status_code": 2000, "data": [{"id": "1"}]}, [{"id": "1"}]),
        # Extra top-level keys are tolerated.
        ({"status_code": 1000, "data": [], "extra": {"x": 1}}, []),
    ],
)
def test_list_endpoint_items(document: dict[str, Any], items: list[Any]) -> None:
    envelope = parse_envelope(body(document), list_data=True)
    assert envelope.items == items
    assert envelope.data_value == document.get("data")


@pytest.mark.parametrize(
    "data",
    [
        {"version": "2.2.1", "endpoints": []},
        [{"version": "2.2.1", "url": "https://p/2.2.1"}],
        "text",
        17,
        None,
    ],
)
def test_object_endpoint_keeps_data_as_sent(data: Any) -> None:
    envelope = parse_envelope(body({"status_code": 1000, "data": data}), list_data=False)
    assert envelope.items == []
    assert envelope.data_value == data


@pytest.mark.parametrize(
    ("document", "message", "timestamp"),
    [
        ({"status_code": 1000, "status_message": 5, "timestamp": 1}, None, None),
        ({"status_code": 1000, "status_message": None, "timestamp": None}, None, None),
        ({"status_code": 1000, "status_message": ["x"], "timestamp": {"t": 1}}, None, None),
        ({"status_code": 1000, "status_message": "", "timestamp": "garbage"}, "", "garbage"),
    ],
)
def test_message_and_timestamp_only_when_strings(
    document: dict[str, Any], message: str | None, timestamp: str | None
) -> None:
    envelope = parse_envelope(body(document))
    assert (envelope.status_message, envelope.timestamp) == (message, timestamp)


@pytest.mark.parametrize(
    ("status_code", "success"),
    [(-5, False), (0, False), (999, False), (1000, True), (1999, True), (2000, False)],
)
def test_is_success_is_1xxx(status_code: int, success: bool) -> None:
    assert parse_envelope(body({"status_code": status_code})).is_success is success


@pytest.mark.parametrize(
    "raw",
    [
        b'  \n{"status_code": 1000, "data": []}\n\t',  # surrounding whitespace
        b'{"status_code":1000,"data":[],"data":[1]}',  # duplicate key: the last wins
        b'{"data":[{"name":"Caf\\u00e9 \xe2\x9a\xa1"}],"status_code":1000}',  # escapes, UTF-8
    ],
)
def test_legal_json_spellings(raw: bytes) -> None:
    assert parse_envelope(raw).status_code == 1000


def test_nesting_within_the_parser_limit_is_accepted() -> None:
    depth = 500
    raw = b'{"status_code":1000,"data":[' + b"[" * depth + b"]" * depth + b"]}"
    envelope = parse_envelope(raw)
    assert len(envelope.items) == 1


def test_mislabelled_content_does_not_matter() -> None:
    # The body decides: there is no content-type argument at all.
    assert parse_envelope(body({"status_code": 1000, "data": [1]})).items == [1]


# --- parse_envelope: refused -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty body"),
        (b"   \r\n\t ", "empty body"),
        (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        (b"<!DOCTYPE html>\n<html>", "not JSON"),
        (b"Service Unavailable", "not JSON"),
        (b"\xff\xfe{\x00}\x00", "not JSON"),  # UTF-16
        (b'{"status_code":1000,"data":["\xff"]}', "not JSON"),  # invalid UTF-8
        (b'{"status_code":1000,"data":["\xed\xa0\x80"]}', "not JSON"),  # encoded surrogate
        (b'{"status_code":1000,"data":["\\ud800"]}', "not JSON"),  # lone surrogate escape
        (b'\xef\xbb\xbf{"status_code":1000}', "not JSON"),  # UTF-8 BOM
        (b'{"status_code":1000,"data":[', "not JSON"),  # truncated
        (b'{"status_code":1000', "not JSON"),
        (b'{"status_code":1000} trailing', "not JSON"),
        (b'{"status_code":1000}{"status_code":1000}', "not JSON"),
        (b'{"status_code":1000,"data":[]}\x00', "not JSON"),
        (b'{"status_code":NaN}', "not JSON"),
        (b'{"status_code":1000,"data":[Infinity]}', "not JSON"),
        (b"{'status_code': 1000}", "not JSON"),
        (b'{"status_code":1000,}', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),  # deep nesting
        (b'{"data":' + b"[" * 2000 + b"]" * 2000 + b',"status_code":1000}', "not JSON"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "not JSON"),
        (b"null", "not an OCPI envelope"),
        (b"[]", "not an OCPI envelope"),
        (b'[{"status_code":1000}]', "not an OCPI envelope"),
        (b'"status_code"', "not an OCPI envelope"),
        (b"1000", "not an OCPI envelope"),
        (b"true", "not an OCPI envelope"),
        (b"{}", "integer status_code"),
        (b'{"data":[]}', "integer status_code"),
        (b'{"status_code":"1000"}', "integer status_code"),
        (b'{"status_code":1000.0}', "integer status_code"),
        (b'{"status_code":1e3}', "integer status_code"),
        (b'{"status_code":true}', "integer status_code"),
        (b'{"status_code":null}', "integer status_code"),
        (b'{"status_code":[1000]}', "integer status_code"),
        (b'{"status_code":99999999999999999999999}', "integer status_code"),
        (b'{"status_code":1000,"data":{"id":"1"}}', "a `data` dict"),
        (b'{"status_code":1000,"data":"[]"}', "a `data` str"),
        (b'{"status_code":1999,"data":0}', "a `data` int"),
    ],
)
def test_refused_bodies(raw: bytes, fragment: str) -> None:
    with pytest.raises(PartnerProtocolError) as caught:
        parse_envelope(raw)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert len(message) < 300
    assert caught.value.exit_code == 5  # a partner protocol failure ends the pull incomplete


@pytest.mark.parametrize(
    "raw", [b"", b"<html>", b"null", b"{}", b'{"status_code":"x"}', b"[" * 5000]
)
def test_object_endpoint_refuses_the_same_non_envelopes(raw: bytes) -> None:
    with pytest.raises(PartnerProtocolError):
        parse_envelope(raw, list_data=False)


def test_message_shows_only_the_start_of_a_huge_body() -> None:
    raw = b"<html>" + b"x" * 10_000_000
    with pytest.raises(PartnerProtocolError) as caught:
        parse_envelope(raw)
    assert "10000006 bytes" in str(caught.value)
    assert len(str(caught.value)) < 300


# --- parse_envelope: properties --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-(2**63), 2**63 - 1),
    st.lists(json_values, max_size=5),
    st.none() | st.text(max_size=20),
    st.none() | st.text(max_size=20),
)
def test_valid_list_envelopes_round_trip(
    status_code: int, items: list[Any], message: str | None, timestamp: str | None
) -> None:
    document = {
        "data": items,
        "status_code": status_code,
        "status_message": message,
        "timestamp": timestamp,
    }
    envelope = parse_envelope(orjson.dumps(document))
    assert envelope == Envelope(status_code, message, timestamp, items, items)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1), json_values, st.booleans())
def test_any_data_follows_the_documented_rule(status_code: int, data: Any, list_data: bool) -> None:
    raw = orjson.dumps({"status_code": status_code, "data": data})
    wrong_shape = list_data and data is not None and not isinstance(data, list)
    if wrong_shape and 1000 <= status_code <= 1999:
        with pytest.raises(PartnerProtocolError):
            parse_envelope(raw, list_data=list_data)
        return
    envelope = parse_envelope(raw, list_data=list_data)
    assert envelope.data_value == data
    expected = data if list_data and isinstance(data, list) else []
    assert envelope.items == expected


fragments = st.sampled_from(
    [
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b'"status_code"',
        b'"data"',
        b"1000",
        b"-1",
        b"1e99",
        b"null",
        b'"\\u',
        b"\xff",
        b"\xc3",
        b"\xef\xbb\xbf",
        b" ",
        b"<html>",
        b"\x00",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.lists(fragments, max_size=30).map(b"".join), st.booleans())
def test_any_bytes_give_an_envelope_or_a_protocol_error(raw: bytes, list_data: bool) -> None:
    message = ""
    try:
        envelope = parse_envelope(raw, list_data=list_data)
    except PartnerProtocolError as error:
        message = str(error)
    if message:
        assert "\n" not in message
        assert len(message) < 300
        return
    assert isinstance(envelope.status_code, int)
    assert not isinstance(envelope.status_code, bool)
    assert isinstance(envelope.items, list)


# --- parse_count_header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0),
        ("50", 50),
        (" 50 ", 50),
        ("\t50\r\n", 50),
        ("050", 50),
        ("0000000000050", 50),  # 13 characters: still read
        ("00000000000050", None),  # 14: too long to be sane
        (str(MAX_COUNT_HEADER), MAX_COUNT_HEADER),
        (str(MAX_COUNT_HEADER + 1), None),
        ("9999999999999", None),
        ("9" * 5000, None),  # beyond int()'s digit limit: must not raise
        ("", None),
        ("   ", None),
        ("-1", None),
        ("-0", None),
        ("+50", None),
        ("5 0", None),
        ("50,100", None),
        ("1.5", None),
        ("50.0", None),
        ("1e3", None),
        ("0x10", None),
        ("1_000", None),
        ("NaN", None),
        ("inf", None),
        ("fifty", None),
        ("<html>", None),
        # Digits that are not ASCII: isdigit() says yes, they are still garbage in a header.
        ("²", None),
        ("¹²³", None),
        ("١٢٣", None),
        ("５０", None),
        ("①", None),
    ],
)
def test_parse_count_header_table(value: str | None, expected: int | None) -> None:
    assert parse_count_header(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(0, MAX_COUNT_HEADER), st.sampled_from(["", " ", "\t", "  "]))
def test_every_sane_count_is_read(number: int, pad: str) -> None:
    assert parse_count_header(f"{pad}{number}{pad}") == number


@settings(max_examples=200, deadline=None)
@given(st.integers(max_value=-1) | st.integers(min_value=MAX_COUNT_HEADER + 1))
def test_negative_and_huge_counts_are_ignored(number: int) -> None:
    assert parse_count_header(str(number)) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30) | st.from_regex(r"\A[ \t]*[-+]?[0-9٠-٩²０-９.,_eE]{0,20}[ \t]*\Z"))
def test_any_text_gives_a_sane_count_or_none(value: str) -> None:
    result = parse_count_header(value)
    assert result is None or 0 <= result <= MAX_COUNT_HEADER
    if result is not None:
        assert value.strip().isascii()
        assert int(value.strip()) == result
