"""Tests for ``schemas.datetimes``: every form partners send, every dialect, and totality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.datetimes import OcpiDateTime, epoch_seconds, parse_datetime
from schemas.dialects import TIMESTAMP_DIALECTS, Dialect
from schemas.ocpi.base import DateTime, DateTimeIso8601

SPACE = Dialect.SPACE_SEPARATOR
LOWER = Dialect.LOWERCASE_DESIGNATOR
OFFSET = Dialect.NUMERIC_OFFSET
COMPACT = Dialect.COMPACT_OFFSET
LONG = Dialect.LONG_FRACTION
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


PARSED = [
    # The spec's own examples (2.2.1/2.3.0 types): no dialect.
    ("2015-06-29T20:39:09Z", utc(2015, 6, 29, 20, 39, 9), set()),
    ("2015-06-29T20:39:09", utc(2015, 6, 29, 20, 39, 9), set()),
    ("2016-12-29T17:45:09.2Z", utc(2016, 12, 29, 17, 45, 9, 200000), set()),
    ("2016-12-29T17:45:09.2", utc(2016, 12, 29, 17, 45, 9, 200000), set()),
    ("2018-01-01T01:08:01.123Z", utc(2018, 1, 1, 1, 8, 1, 123000), set()),
    ("2018-01-01T01:08:01.123", utc(2018, 1, 1, 1, 8, 1, 123000), set()),
    # Up to nine fractional digits is what strict accepts: not a dialect; beyond six truncated.
    ("2024-01-01T00:00:00.123456789Z", utc(2024, 1, 1, 0, 0, 0, 123456), set()),
    ("2024-01-01T00:00:00.999999999Z", utc(2024, 1, 1, 0, 0, 0, 999999), set()),
    ("2024-01-01T00:00:00.000Z", utc(2024, 1, 1), set()),
    # The open-source server, and other dialects.
    ("2024-03-04 03:00:00+00:00", utc(2024, 3, 4, 3), {SPACE, OFFSET}),
    ("2024-03-04 03:00:00", utc(2024, 3, 4, 3), {SPACE}),
    ("2024-03-04 03:00:00Z", utc(2024, 3, 4, 3), {SPACE}),
    ("2024-03-04t03:00:00Z", utc(2024, 3, 4, 3), {LOWER}),
    ("2024-03-04T03:00:00z", utc(2024, 3, 4, 3), {LOWER}),
    ("2024-03-04t03:00:00.5z", utc(2024, 3, 4, 3, 0, 0, 500000), {LOWER}),
    ("2024-03-04T04:00:00+01:00", utc(2024, 3, 4, 3), {OFFSET}),
    ("2024-03-04T01:30:00-01:30", utc(2024, 3, 4, 3), {OFFSET}),
    ("2024-03-04T03:00:00-00:00", utc(2024, 3, 4, 3), {OFFSET}),
    ("2024-03-04T04:00:00+0100", utc(2024, 3, 4, 3), {COMPACT}),
    ("2024-03-04 04:00:00+01", utc(2024, 3, 4, 3), {SPACE, COMPACT}),
    ("2024-03-04T03:00:00-0000", utc(2024, 3, 4, 3), {COMPACT}),
    ("2024-03-05T02:59:00+23:59", utc(2024, 3, 4, 3), {OFFSET}),
    ("2024-03-04T03:00:00.1234567890Z", utc(2024, 3, 4, 3, 0, 0, 123456), {LONG}),
    (
        "2024-03-04 03:00:00.1234567890123+00:00",
        utc(2024, 3, 4, 3, 0, 0, 123456),
        {SPACE, LONG, OFFSET},
    ),
    # An offset moves the instant across days, months and years.
    ("2024-01-01T00:30:00+01:00", utc(2023, 12, 31, 23, 30), {OFFSET}),
    ("2024-02-28T23:00:00-02:00", utc(2024, 2, 29, 1), {OFFSET}),
    # Calendar edges.
    ("2024-02-29T00:00:00Z", utc(2024, 2, 29), set()),
    ("2000-02-29T00:00:00Z", utc(2000, 2, 29), set()),
    ("0001-01-01T00:00:00Z", utc(1, 1, 1), set()),
    ("9999-12-31T23:59:59.999999Z", utc(9999, 12, 31, 23, 59, 59, 999999), set()),
    ("1969-12-31T23:59:59.5Z", utc(1969, 12, 31, 23, 59, 59, 500000), set()),
]


@pytest.mark.parametrize(("text", "instant", "dialects"), PARSED)
def test_parse(text: str, instant: datetime, dialects: set[Dialect]) -> None:
    parsed = parse_datetime(text)
    assert parsed == OcpiDateTime(instant, frozenset(dialects))
    assert parsed.instant.tzinfo is UTC
    assert epoch_seconds(text) == parsed.epoch_seconds == (instant - EPOCH) // timedelta(seconds=1)


NOT_DATETIMES: list[Any] = [
    "",
    "2024",
    "2024-03-04",
    "03:00:00",
    "2024-03-04T03:00Z",  # no seconds
    "2024-03-04T03:00:00.Z",  # a dot without digits
    "2024-03-04T03:00:00,5Z",  # ISO 8601's comma, not RFC 3339
    "2024-3-4T03:00:00Z",
    "1970-1-1T00:00:00Z",  # the 2.2.1 CDR note's misprint
    "20240304T030000Z",
    "2024-03-04T3:00:00Z",
    "2024-03-04_03:00:00Z",
    "2024-03-04  03:00:00Z",
    "2024-03-04T03:00:00 Z",
    "2024-03-04T03:00:00 +01:00",
    " 2024-03-04T03:00:00Z",
    "2024-03-04T03:00:00Z ",
    "2024-03-04T03:00:00Z\n",
    "2024-03-04T03:00:00\n",
    "2024-03-04T03:00:00ZZ",
    "2024-03-04T03:00:00+01:00Z",
    "2024-03-04T03:00:00UTC",
    "2024-03-04T03:00:00GMT+1",
    "2024-03-04T03:00:00+1:00",
    "2024-03-04T03:00:00+01:0",
    "2024-03-04T03:00:00+010",
    "2024-03-04T03:00:00+24:00",
    "2024-03-04T03:00:00+01:60",
    "2024-03-04T03:00:00+2400",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-00-01T00:00:00Z",
    "2024-01-00T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T23:60:00Z",
    "2016-12-31T23:59:60Z",  # leap second: no datetime can hold it
    "0000-01-01T00:00:00Z",  # year 0: outside datetime's range
    "0001-01-01T00:30:00+01:00",  # lands in year 0
    "9999-12-31T23:30:00-01:00",  # lands in year 10000
    "２０２４-03-04T03:00:00Z",  # fullwidth digits
    "2024-03-04T03:00:0٣Z",  # an Arabic-Indic digit
    "2024-03-04T03:00:00.٣Z",
    "2024-03-04T03:00:00+0١:00",
    None,
    1709521200,
    1709521200.0,
    True,
    b"2024-03-04T03:00:00Z",
    ["2024-03-04T03:00:00Z"],
    {"last_updated": "2024-03-04T03:00:00Z"},
]


@pytest.mark.parametrize("value", NOT_DATETIMES)
def test_not_a_datetime(value: Any) -> None:
    assert parse_datetime(value) is None
    assert epoch_seconds(value) is None


def test_a_str_subclass_is_a_string() -> None:
    class Text(str):
        pass

    assert epoch_seconds(Text("2024-03-04T03:00:00Z")) == 1709521200
    assert parse_datetime(Text("2024-03-04 03:00:00")) is not None


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2024-03-04 03:00:00+00:00", "2024-03-04T03:00:00Z"),
        ("2024-03-04T04:00:00.5+01:00", "2024-03-04T03:00:00.500000Z"),
        ("2024-03-04T03:00:00.000000001", "2024-03-04T03:00:00Z"),
        ("0001-01-01 00:00:00.000001", "0001-01-01T00:00:00.000001Z"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    parsed = parse_datetime(text)
    assert parsed is not None
    assert parsed.canonical == canonical


def test_parsed_datetime_is_a_frozen_value() -> None:
    parsed = parse_datetime("2024-03-04T03:00:00Z")
    assert parsed is not None
    with pytest.raises(AttributeError):
        parsed.instant = EPOCH  # type: ignore[misc]
    assert not hasattr(parsed, "__dict__")
    assert {SPACE, LOWER, OFFSET, COMPACT, LONG} == TIMESTAMP_DIALECTS


# --- Properties -----------------------------------------------------------------------------

# Instants whose every rendering (offsets up to ±23:59) stays inside years 1-9999.
instants = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timedelta(minutes=m))


@st.composite
def renderings(draw: st.DrawFn) -> tuple[str, datetime, frozenset[Dialect]]:
    """Some instant, written in some combination of dialects: (text, instant, dialects)."""
    instant = draw(instants)
    dialects: set[Dialect] = set()
    separator = draw(st.sampled_from("Tt "))
    if separator == " ":
        dialects.add(SPACE)
    elif separator == "t":
        dialects.add(LOWER)
    zone = draw(st.sampled_from(["Z", "z", "", "+HH:MM", "+HHMM", "+HH"]))
    offset = timedelta(0)
    if zone.startswith("+"):
        offset = draw(offsets)
        if zone == "+HH":
            offset = timedelta(hours=int(offset / timedelta(hours=1)))
        sign, size = ("-", -offset) if offset < timedelta(0) else ("+", offset)
        hours, minutes = divmod(int(size / timedelta(minutes=1)), 60)
        zone = {
            "+HH:MM": f"{sign}{hours:02d}:{minutes:02d}",
            "+HHMM": f"{sign}{hours:02d}{minutes:02d}",
            "+HH": f"{sign}{hours:02d}",
        }[zone]
        dialects.add(OFFSET if ":" in zone else COMPACT)
    elif zone == "z":
        dialects.add(LOWER)
    digits = draw(st.integers(0, 14))
    extra = draw(st.text(st.sampled_from("0123456789"), min_size=8, max_size=8))
    all_digits = f"{instant.microsecond:06d}{extra}"
    fraction = f".{all_digits[:digits]}" if digits else ""
    if digits > 9:
        dialects.add(LONG)
    # Digits beyond the sixth are dropped, not rounded.
    expected = instant.replace(microsecond=int(all_digits[: min(digits, 6)].ljust(6, "0")))
    local = (instant + offset).replace(tzinfo=None)
    text = local.isoformat(sep=separator, timespec="seconds") + fraction + zone
    return text, expected, frozenset(dialects)


@given(renderings())
def test_every_rendering_parses_back(case: tuple[str, datetime, frozenset[Dialect]]) -> None:
    text, instant, dialects = case
    parsed = parse_datetime(text)
    assert parsed == OcpiDateTime(instant, dialects), text
    assert epoch_seconds(text) == (instant - EPOCH) // timedelta(seconds=1)
    canonical = parse_datetime(parsed.canonical)
    assert canonical == OcpiDateTime(instant, frozenset())


@given(renderings())
def test_agrees_with_fromisoformat_where_both_read(
    case: tuple[str, datetime, frozenset[Dialect]],
) -> None:
    """Python's own ISO parser, as an independent oracle for the offset arithmetic."""
    text = case[0]
    if LOWER in case[2] or LONG in case[2]:
        return  # forms fromisoformat does not read (3.11)
    oracle = datetime.fromisoformat(text)
    if oracle.tzinfo is None:
        oracle = oracle.replace(tzinfo=UTC)
    parsed = parse_datetime(text)
    assert parsed is not None
    assert parsed.instant == oracle.astimezone(UTC)


STRICT_2_2_1 = TypeAdapter(DateTime)
STRICT_2_1_1 = TypeAdapter(DateTimeIso8601)


def strict_accepts(adapter: TypeAdapter[str], text: str) -> bool:
    try:
        adapter.validate_python(text)
    except ValidationError:
        return False
    return True


# Text that looks like a DateTime, with characters swapped, dropped or inserted.
_ALPHABET = "0123456789-:.TtZz +٣"
near_datetimes = st.one_of(
    renderings().map(lambda case: case[0]),
    st.text(st.sampled_from(_ALPHABET), max_size=32),
    st.tuples(renderings(), st.integers(0, 40), st.sampled_from(_ALPHABET + "x\n")).map(
        lambda t: t[0][0][: t[1]] + t[2] + t[0][0][t[1] + 1 :]
    ),
    st.tuples(renderings(), st.integers(0, 40), st.sampled_from(_ALPHABET + "x")).map(
        lambda t: t[0][0][: t[1]] + t[2] + t[0][0][t[1] :]
    ),
)


@settings(max_examples=500)
@given(near_datetimes)
def test_no_dialect_exactly_when_strict_accepts(text: str) -> None:
    """What the models accept is exactly what parses without a dialect (2.1.1: plus ±HH:MM).

    Year 0000 is the one exception: its calendar is valid text, but no datetime holds it.
    """
    parsed = parse_datetime(text)
    if text.startswith("0000"):
        assert parsed is None
        return
    spec_2_2_1 = parsed is not None and not parsed.dialects
    spec_2_1_1 = parsed is not None and parsed.dialects <= {OFFSET}
    assert strict_accepts(STRICT_2_2_1, text) == spec_2_2_1, text
    assert strict_accepts(STRICT_2_1_1, text) == spec_2_1_1, text


@settings(max_examples=500)
@given(st.one_of(near_datetimes, st.text(max_size=40), st.from_type(object)))
def test_total_and_the_fast_path_agrees(value: Any) -> None:
    parsed = parse_datetime(value)
    assert parsed is None or isinstance(parsed, OcpiDateTime)
    assert epoch_seconds(value) == (None if parsed is None else parsed.epoch_seconds)


_CANONICAL_ALPHABET = "0123456789-:TZ +.a٣"


def canonical_text(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


@settings(max_examples=1000)
@given(
    st.one_of(
        instants.map(canonical_text),
        st.text(st.sampled_from(_CANONICAL_ALPHABET), min_size=19, max_size=20),
        instants.map(lambda d: canonical_text(d)[:19]),
        st.tuples(instants, st.integers(0, 19), st.sampled_from(_CANONICAL_ALPHABET)).map(
            lambda t: canonical_text(t[0])[: t[1]] + t[2] + canonical_text(t[0])[t[1] + 1 :]
        ),
    )
)
def test_fast_path_equals_the_general_parser(text: str) -> None:
    """Texts shaped like the canonical form, with or without the Z: the fast path decides them."""
    parsed = parse_datetime(text)
    assert epoch_seconds(text) == (None if parsed is None else parsed.epoch_seconds), text
