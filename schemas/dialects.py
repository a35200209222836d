"""The dialects of OCPI that partners really speak, by name.

A dialect is a way of writing an object that the version's own format does not allow but whose
meaning is unambiguous. ``--validation lenient`` reads them (``schemas.validation``) and reports,
per object, which ones it used; ``strict`` rejects them as the spec does. What a version's spec
allows is never a dialect: the canonical ``2015-06-29T20:39:09Z``, a fraction of up to 9 digits,
no zone designator (UTC in every version), a ``±HH:MM`` offset in 2.1.1, lower-case CiStrings
(case-insensitive by definition) and ``null`` for an absent optional field.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TIMESTAMP_DIALECTS", "Dialect"]


class Dialect(StrEnum):
    """One dialect; the value is the name the puller's summary and warnings use."""

    SPACE_SEPARATOR = "space_separator"
    """A DateTime with a space between date and time (``2024-03-04 03:00:00``)."""

    LOWERCASE_DESIGNATOR = "lowercase_designator"
    """A DateTime with ``t``/``z`` in lower case (RFC 3339 allows it, OCPI's format does not)."""

    NUMERIC_OFFSET = "numeric_offset"
    """A DateTime with a ``±HH:MM`` offset instead of ``Z`` (2.2.1+: "+00:00 is not UTC")."""

    COMPACT_OFFSET = "compact_offset"
    """A DateTime with a ``±HHMM`` or ``±HH`` offset (ISO 8601 basic, PostgreSQL's text)."""

    LONG_FRACTION = "long_fraction"
    """A DateTime with more than 9 fractional digits (only microseconds are kept)."""

    ENUM_CASE = "enum_case"
    """A closed-enum value in other letter case than the version lists (``rfid`` for ``RFID``).
    OCPI enum values are case-sensitive ("unless explicitly stated otherwise", types)."""

    OUT_OF_SPEC = "out_of_spec"
    """A value of the right JSON type that breaks a constraint of the spec on it: a string longer
    than its ``string(n)``, a pattern other than DateTime (coordinates' decimals, times of day,
    dates, printable ASCII), a number out of range, or a cross-field SHALL rule."""


TIMESTAMP_DIALECTS = frozenset(
    {
        Dialect.SPACE_SEPARATOR,
        Dialect.LOWERCASE_DESIGNATOR,
        Dialect.NUMERIC_OFFSET,
        Dialect.COMPACT_OFFSET,
        Dialect.LONG_FRACTION,
    }
)
"""The dialects `schemas.datetimes.parse_datetime` can report."""
