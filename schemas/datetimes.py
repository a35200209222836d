"""The one parser of OCPI DateTime text: what the spec writes and what partners really send.

OCPI 2.2.1/2.3.0 write ``2015-06-29T20:39:09Z`` (RFC 3339 in UTC; a fraction may follow the
seconds, and no zone designator means UTC); 2.1.1 also allows a ``±HH:MM`` offset. Partners also
send the dialects of `schemas.dialects`: a space for ``T``, lower-case ``t``/``z``, any numeric
offset, fractions of any length. `parse_datetime` reads all of them and says which were used;
`epoch_seconds` is the hot-path reading for window checks, with a fast path for the canonical form.

Both are total: any input (not a string, garbage, an impossible date, a leap second, a year
outside 1-9999 after applying the offset) gives ``None``, never an exception.

Dialects are named relative to the 2.2.1/2.3.0 format, the strictest; the spec forms of a version
(2.1.1's ``±HH:MM``) are subtracted by the caller that knows the version (`schemas.validation`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.dialects import Dialect

__all__ = ["OcpiDateTime", "epoch_seconds", "parse_datetime"]

# Date, separator, time, optional fraction, optional zone. [0-9], not \d: \d matches any Unicode
# digit. Calendar validity is left to datetime(), which knows month lengths and leap years.
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})([Tt ])([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2})(?:(:?)([0-9]{2}))?)?"
)
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_NO_DIALECTS: frozenset[Dialect] = frozenset()


@dataclass(frozen=True, slots=True)
class OcpiDateTime:
    """A parsed OCPI DateTime.

    ``instant`` is aware and in UTC, with the fraction truncated to microseconds; ``dialects``
    is empty for the 2.2.1/2.3.0 format (``Z`` or no designator, up to 9 fractional digits).
    """

    instant: datetime
    dialects: frozenset[Dialect]

    @property
    def epoch_seconds(self) -> int:
        """Whole seconds since 1970-01-01T00:00:00Z, rounded down (the fraction is dropped).

        Rounding down compares exactly like the instant against whole-second bounds:
        ``floor(t) < b`` if and only if ``t < b`` for an integer ``b``.
        """
        return _whole_seconds(self.instant)

    @property
    def canonical(self) -> str:
        """The instant as OCPI's canonical text: ``YYYY-MM-DDTHH:MM:SSZ``, with ``.ffffff``
        before the ``Z`` when the instant has a fraction."""
        # isoformat pads the year to four digits (strftime's %Y does not on every platform) and
        # adds ".ffffff" only for a non-zero fraction.
        return self.instant.replace(tzinfo=None).isoformat() + "Z"


def parse_datetime(value: object) -> OcpiDateTime | None:
    """Parse an OCPI DateTime in any of the forms partners send; ``None`` if it is not one.

    Accepted: ``YYYY-MM-DD``, then ``T``, ``t`` or a space, then ``HH:MM:SS``, an optional
    fraction of any length, and an optional zone: ``Z``, ``z``, ``±HH:MM``, ``±HHMM`` or ``±HH``
    (offsets up to ±23:59; none means UTC). The date must exist and the time must be a real time
    of day (no ``24:00:00``, no leap second ``:60``). Anything else, including non-strings, gives
    ``None``. Never raises.
    """
    if not isinstance(value, str):
        return None
    match = _DATETIME.fullmatch(value)
    if match is None:
        return None
    year, month, day, separator, hour, minute, second = match.group(1, 2, 3, 4, 5, 6, 7)
    fraction, designator, sign, offset_hours, colon, offset_minutes = match.group(
        8, 9, 10, 11, 12, 13
    )
    dialects: set[Dialect] = set()
    if separator == " ":
        dialects.add(Dialect.SPACE_SEPARATOR)
    elif separator == "t":
        dialects.add(Dialect.LOWERCASE_DESIGNATOR)
    if designator == "z":
        dialects.add(Dialect.LOWERCASE_DESIGNATOR)
    microsecond = 0
    if fraction is not None:
        if len(fraction) > 9:
            dialects.add(Dialect.LONG_FRACTION)
        microsecond = int(fraction[:6].ljust(6, "0"))
    offset = timedelta(0)
    if sign is not None:
        minutes = int(offset_minutes) if offset_minutes is not None else 0
        if int(offset_hours) > 23 or minutes > 59:
            return None
        offset = timedelta(hours=int(offset_hours), minutes=minutes)
        if sign == "-":
            offset = -offset
        # Only the RFC 3339 form ±HH:MM is an RFC 3339 offset; ±HHMM and ±HH are ISO 8601 forms.
        dialects.add(Dialect.NUMERIC_OFFSET if colon else Dialect.COMPACT_OFFSET)
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond
        )
        instant = (local - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        # An impossible date or time of day, or an offset that leaves years 1-9999.
        return None
    return OcpiDateTime(instant, frozenset(dialects) if dialects else _NO_DIALECTS)


def epoch_seconds(value: object) -> int | None:
    """Whole epoch seconds (rounded down) of an OCPI DateTime in any form; ``None`` if not one.

    The puller's window check on the hot path: the canonical ``YYYY-MM-DDTHH:MM:SSZ`` (and the
    spec's zone-less ``YYYY-MM-DDTHH:MM:SS``) take a fast path (about 1 µs); every other form goes
    through `parse_datetime`, so the two always agree. Never raises.
    """
    if (
        type(value) is str
        and ((len(value) == 20 and value[19] == "Z") or len(value) == 19)
        and value[10] == "T"
        and value[4] == "-"
        and value[7] == "-"
        and value[13] == ":"
        and value[16] == ":"
        and value.isascii()
    ):
        try:
            # With every separator checked, fromisoformat (C) reads exactly YYYY-MM-DDTHH:MM:SS
            # and checks the digits and the calendar.
            local = datetime.fromisoformat(value[:19])
        except ValueError:
            return None
        return _whole_seconds(local)
    parsed = parse_datetime(value)
    return None if parsed is None else parsed.epoch_seconds


def _whole_seconds(instant: datetime) -> int:
    # Ordinal arithmetic instead of .timestamp(): exact integers and no float rounding.
    return (
        (instant.toordinal() - _EPOCH_ORDINAL) * 86_400
        + instant.hour * 3_600
        + instant.minute * 60
        + instant.second
    )
