"""The dialects of OCPI that partners really speak, by name.

A dialect is a way of writing an object that the version's own format does not allow but whose
meaning is unambiguous. ``--validation lenient`` reads them (``schemas.validation``) and reports,
per object, which ones it used; ``strict`` rejects them as the spec does. What a version's spec
allows is never a dialect: the canonical ``2015-06-29T20:39:09Z``, a fraction of up to 9 digits,
no zone designator (UTC in every version), a ``±HH:MM`` offset in 2.1.1, lower-case CiStrings
(case-insensitive by definition) and ``null`` for an absent optional field.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = ["DESCRIPTIONS", "TIMESTAMP_DIALECTS", "Dialect"]


class Dialect(StrEnum):
    """One dialect; the value is the name the puller's summary and warnings use."""

    SPACE_SEPARATOR = "space_separator"
    LOWERCASE_DESIGNATOR = "lowercase_designator"
    NUMERIC_OFFSET = "numeric_offset"
    COMPACT_OFFSET = "compact_offset"
    LONG_FRACTION = "long_fraction"
    ENUM_CASE = "enum_case"
    OUT_OF_SPEC = "out_of_spec"


DESCRIPTIONS: Mapping[Dialect, str] = MappingProxyType(
    {
        Dialect.SPACE_SEPARATOR: "timestamps with a space between date and time "
        "(2024-03-04 03:00:00), read as if it were a T",
        Dialect.LOWERCASE_DESIGNATOR: "timestamps with a lower-case t or z "
        "(RFC 3339 allows it, OCPI's format does not)",
        Dialect.NUMERIC_OFFSET: "timestamps with a ±HH:MM offset instead of Z, read as the UTC "
        'instant (OCPI 2.2.1+: "+00:00 is not the same as UTC")',
        Dialect.COMPACT_OFFSET: "timestamps with a ±HHMM or ±HH offset (ISO 8601, not RFC 3339), "
        "read as the UTC instant",
        Dialect.LONG_FRACTION: "timestamps with more than 9 fractional digits, read to the "
        "microsecond",
        Dialect.ENUM_CASE: "enum values in other letter case than the version lists (rfid for "
        "RFID; OCPI enums are case-sensitive), read as the listed value",
        Dialect.OUT_OF_SPEC: "values of the right JSON type that break a constraint of the spec "
        "(a string over its length, a pattern other than DateTime, a number out of range, a "
        "cross-field rule), kept as sent",
    }
)
"""What each dialect is, in words for a warning."""

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
