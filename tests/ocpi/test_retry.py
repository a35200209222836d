"""Retry policy and `Retry-After` (producer/retry.py): tables, properties, fuzz."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.ocpi.http.retry import (
    Failure,
    RetryPolicy,
    attempts_allowed,
    backoff_delay,
    is_retryable,
    parse_retry_after,
    retry_delay,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy()

# --- is_retryable ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (Failure("timeout"), True),
        (Failure("connection"), True),
        (Failure("bad_body"), True),
        (Failure("bad_body", http_status=200), True),
        # HTTP
        (Failure("http_status", http_status=408), True),
        (Failure("http_status", http_status=425), True),
        (Failure("http_status", http_status=429), True),
        (Failure("http_status", http_status=500), True),
        (Failure("http_status", http_status=502), True),
        (Failure("http_status", http_status=503), True),
        (Failure("http_status", http_status=504), True),
        (Failure("http_status", http_status=599), True),
        (Failure("http_status", http_status=400), False),
        (Failure("http_status", http_status=401), False),
        (Failure("http_status", http_status=403), False),
        (Failure("http_status", http_status=404), False),
        (Failure("http_status", http_status=405), False),
        (Failure("http_status", http_status=409), False),
        (Failure("http_status", http_status=410), False),
        (Failure("http_status", http_status=422), False),
        (Failure("http_status", http_status=431), False),
        (Failure("http_status", http_status=499), False),
        (Failure("http_status", http_status=600), False),
        (Failure("http_status", http_status=301), False),
        (Failure("http_status", http_status=200), False),
        (Failure("http_status", http_status=0), False),
        (Failure("http_status"), False),
        # OCPI status codes
        (Failure("ocpi_status", ocpi_status=3000), True),
        (Failure("ocpi_status", ocpi_status=3900), True),
        (Failure("ocpi_status", ocpi_status=3999), True),
        (Failure("ocpi_status", ocpi_status=4002), True),
        (Failure("ocpi_status", ocpi_status=4003), True),
        (Failure("ocpi_status", ocpi_status=2000), False),
        (Failure("ocpi_status", ocpi_status=2001), False),
        (Failure("ocpi_status", ocpi_status=2003), False),
        (Failure("ocpi_status", ocpi_status=2004), False),
        (Failure("ocpi_status", ocpi_status=3001), False),
        (Failure("ocpi_status", ocpi_status=3002), False),
        (Failure("ocpi_status", ocpi_status=3003), False),
        (Failure("ocpi_status", ocpi_status=3899), False),
        (Failure("ocpi_status", ocpi_status=4000), False),
        (Failure("ocpi_status", ocpi_status=4001), False),
        (Failure("ocpi_status", ocpi_status=4004), False),
        (Failure("ocpi_status", ocpi_status=1000), False),
        (Failure("ocpi_status", ocpi_status=0), False),
        (Failure("ocpi_status"), False),
    ],
)
def test_is_retryable_table(failure: Failure, retryable: bool) -> None:
    assert is_retryable(failure) is retryable


@settings(max_examples=300, deadline=None)
@given(st.integers(-1000, 10_000))
def test_http_retryable_exactly_for_408_425_429_and_5xx(status: int) -> None:
    expected = status in (408, 425, 429) or 500 <= status <= 599
    assert is_retryable(Failure("http_status", http_status=status)) is expected


@settings(max_examples=300, deadline=None)
@given(st.integers(-1000, 100_000))
def test_ocpi_retryable_exactly_for_3000_39xx_4002_4003(code: int) -> None:
    expected = code == 3000 or 3900 <= code <= 3999 or code in (4002, 4003)
    assert is_retryable(Failure("ocpi_status", ocpi_status=code)) is expected


# --- attempts_allowed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "failure", "expected"),
    [
        (RetryPolicy(), Failure("timeout"), 8),
        (RetryPolicy(), Failure("http_status", http_status=503), 8),
        (RetryPolicy(), Failure("ocpi_status", ocpi_status=3000), 8),
        (RetryPolicy(), Failure("bad_body"), 3),
        (RetryPolicy(max_attempts=2), Failure("bad_body"), 2),
        (RetryPolicy(max_attempts=1), Failure("connection"), 1),
        (RetryPolicy(max_attempts=50, max_bad_body_attempts=5), Failure("bad_body"), 5),
        (RetryPolicy(max_attempts=50, max_bad_body_attempts=5), Failure("timeout"), 50),
    ],
)
def test_attempts_allowed(policy: RetryPolicy, failure: Failure, expected: int) -> None:
    assert attempts_allowed(policy, failure) == expected


# --- backoff_delay ---------------------------------------------------------------------------


def ceiling(policy: RetryPolicy, attempt: int) -> float:
    return min(policy.max_delay_s, policy.base_delay_s * 2.0 ** min(max(0, attempt - 1), 62))


@pytest.mark.parametrize(
    ("attempt", "expected_ceiling"),
    [(-3, 0.5), (0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (8, 30.0)],
)
def test_backoff_ceiling_doubles_up_to_the_cap(attempt: int, expected_ceiling: float) -> None:
    draws = [backoff_delay(POLICY, attempt, random.Random(seed)) for seed in range(300)]
    assert all(0.0 <= d <= expected_ceiling for d in draws)
    # Full jitter: the draws spread over the whole range, not just near the ceiling.
    assert min(draws) < 0.1 * expected_ceiling
    assert max(draws) > 0.9 * expected_ceiling


@pytest.mark.parametrize("attempt", [60, 63, 64, 1000, 1100, 10**6])
def test_backoff_for_absurd_attempts_is_capped_not_an_overflow(attempt: int) -> None:
    assert 0.0 <= backoff_delay(POLICY, attempt, random.Random(1)) <= POLICY.max_delay_s


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-10, 5000),
    st.floats(0.0, 10.0),
    st.floats(0.0, 600.0),
    st.integers(0, 2**32),
)
def test_backoff_is_within_full_jitter_bounds(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_delay_s=base, max_delay_s=cap)
    delay = backoff_delay(policy, attempt, random.Random(seed))
    assert math.isfinite(delay)
    assert 0.0 <= delay <= ceiling(policy, attempt) <= cap


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(0, 2**32))
def test_backoff_is_reproducible_from_the_rng(attempt: int, seed: int) -> None:
    first = backoff_delay(POLICY, attempt, random.Random(seed))
    assert first == backoff_delay(POLICY, attempt, random.Random(seed))


# --- parse_retry_after -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        # delta-seconds
        ("0", 0.0),
        ("1", 1.0),
        ("120", 120.0),
        (" 120 ", 120.0),
        ("\t7\r\n", 7.0),
        ("007", 7.0),
        ("86400", 86400.0),
        ("999999999999", 999999999999.0),
        # HTTP-date, the three RFC 7231 7.1.1.1 formats, 2 minutes ahead
        ("Wed, 01 May 2024 12:02:00 GMT", 120.0),  # IMF-fixdate
        ("Wednesday, 01-May-24 12:02:00 GMT", 120.0),  # obsolete RFC 850
        ("Wed May  1 12:02:00 2024", 120.0),  # obsolete asctime
        # Other zones and spellings email.utils understands
        ("Wed, 01 May 2024 14:02:00 +0200", 120.0),
        ("Wed, 01 May 2024 07:02:00 -0500", 120.0),
        ("Wed, 01 May 2024 12:02:00 UT", 120.0),
        ("Wed, 01 May 2024 12:02:00 -0000", 120.0),  # "no zone": read as UTC
        ("Wed, 01 May 2024 12:02:00", 120.0),  # no zone at all: UTC
        ("01 May 2024 12:02:00 GMT", 120.0),  # no weekday
        ("Wed, 01 May 2024 12:00:00 GMT", 0.0),  # now
        # Dates in the past: wait nothing
        ("Wed, 01 May 2024 11:59:59 GMT", 0.0),
        ("Tue, 30 Apr 2024 12:00:00 GMT", 0.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Mon, 01 Jan 0001 00:00:00 GMT", 0.0),
        ("Wednesday, 01-May-99 12:02:00 GMT", 0.0),  # two-digit year: 1999
        # Garbage: fall back to backoff
        ("-5", None),
        ("-0", None),
        ("+5", None),
        ("1.5", None),
        ("1e3", None),
        ("0x10", None),
        ("5 seconds", None),
        ("soon", None),
        ("<html>", None),
        ("Wed, 32 May 2024 12:02:00 GMT", None),
        ("Wed, 01 Foo 2024 12:02:00 GMT", None),
        ("Wed, 01 May 2024 25:02:00 GMT", None),
        ("Wed, 01 May 2024 12:02:60 GMT", None),
        ("Wed, 01 May 99999 12:02:00 GMT", None),
        ("Wed, 01 May 2024 12:02:00 +9999", None),
        ("Wed, 01 May 2024", None),
        ("1 2 3 4 5", None),
        # Digits that are not ASCII are garbage too, not a crash.
        ("²", None),
        ("¹²", None),
        ("١٢٣", None),
        ("５", None),
        ("①", None),
    ],
)
def test_parse_retry_after_table(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize("value", ["9" * 13, "9" * 100, "9" * 10_000, "1" + "0" * 5000])
def test_huge_delta_seconds_are_finite_and_huge(value: str) -> None:
    # Beyond int()'s digit limit too; retry_delay caps whatever comes back.
    seconds = parse_retry_after(value, NOW)
    assert seconds is not None
    assert math.isfinite(seconds)
    assert seconds >= 10**11
    assert retry_delay(POLICY, 1, seconds, random.Random(0)) == POLICY.max_retry_after_s


def test_far_future_date_is_finite() -> None:
    seconds = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW)
    assert seconds is not None
    assert math.isfinite(seconds)
    assert seconds > 10**11


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**11))
def test_every_delta_seconds_is_read(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == float(seconds)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2060, 12, 31),
        timezones=st.just(UTC),
    ).map(lambda moment: moment.replace(microsecond=0)),
    st.sampled_from(["imf", "rfc850", "asctime", "offset"]),
)
def test_http_dates_in_every_format(when: datetime, style: str) -> None:
    if style == "imf":
        text = format_datetime(when, usegmt=True)
    elif style == "rfc850":
        if not 2000 <= when.year <= 2049:  # two-digit years are read as 19xx/20xx by a pivot
            return
        text = when.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    elif style == "asctime":
        text = when.strftime("%a %b ") + f"{when.day:2d}" + when.strftime(" %H:%M:%S %Y")
    else:
        text = format_datetime(when.astimezone(timezone(timedelta(hours=-7, minutes=-30))))
    expected = max(0.0, (when - NOW).total_seconds())
    assert parse_retry_after(text, NOW) == expected


retry_after_words = st.sampled_from(
    [
        "Wed,",
        "Wednesday,",
        "01",
        "1",
        "32",
        "May",
        "Foo",
        "24",
        "2024",
        "99999",
        "12:02:00",
        "25:61:61",
        "12:02",
        "GMT",
        "UT",
        "EST",
        "-0000",
        "+0200",
        "+9999",
        "-",
        ",",
        ":",
        "²",
        "0",
        "9999999999999",
        "-5",
        "1.5",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.lists(retry_after_words, max_size=8).map(" ".join))
def test_any_text_gives_none_or_a_finite_non_negative_delay(value: str) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0.0)


# --- retry_delay -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(0.0, 0.0), (1.5, 1.5), (299.0, 299.0), (300.0, 300.0), (301.0, 300.0), (1e12, 300.0)],
)
def test_retry_after_wins_but_is_capped(retry_after: float, expected: float) -> None:
    assert retry_delay(POLICY, 5, retry_after, random.Random(0)) == expected


def test_retry_after_cap_follows_the_policy() -> None:
    policy = RetryPolicy(max_retry_after_s=10.0)
    assert retry_delay(policy, 1, 3600.0, random.Random(0)) == 10.0


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(0, 2**32))
def test_without_retry_after_it_is_the_backoff(attempt: int, seed: int) -> None:
    delay = retry_delay(POLICY, attempt, None, random.Random(seed))
    assert delay == backoff_delay(POLICY, attempt, random.Random(seed))
    assert 0.0 <= delay <= ceiling(POLICY, attempt)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.floats(0.0, 1e15), st.integers(0, 2**32))
def test_retry_delay_never_exceeds_the_larger_cap(attempt: int, after: float, seed: int) -> None:
    delay = retry_delay(POLICY, attempt, after, random.Random(seed))
    assert 0.0 <= delay <= max(POLICY.max_retry_after_s, POLICY.max_delay_s)
