"""Building blocks shared by every OCPI version: the base model and the field types.

Only what is identical in OCPI 2.1.1, 2.2.1 and 2.3.0 lives here. Types whose definition differs
between versions (``Price``, ``GeoLocation``'s regex, the DateTime offset rule) are defined in the
version modules, which may import the generic factories below.

All validation happens inside pydantic-core: constraints are expressed as ``StringConstraints``,
``Field`` bounds, literal schemas and regexes, so validating one object never calls back
into Python (the one exception is documented at ``PublishTokenType`` in the 2.2.1 locations).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = [
    "ISO8601_OFFSET",
    "PRINTABLE_ASCII",
    "RFC3339_UTC",
    "URL",
    "CiString",
    "DateTime",
    "DateTimeIso8601",
    "DisplayText",
    "Int5",
    "Number",
    "OcpiModel",
    "OneOf",
    "OpenEnum",
    "String",
    "known_values",
]

# CiString: "Case Insensitive String. Only printable ASCII allowed" (space to tilde).
PRINTABLE_ASCII = r"^[\x20-\x7E]*$"

# A calendar date (month lengths and leap years checked, so 2019-02-29 fails) and a time of day.
# [0-9], not \d: pydantic-core's Rust regex treats \d as any Unicode digit.
_DATE = (
    r"(?:[0-9]{4}-(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|[0-9]{4}-(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|[0-9]{4}-02-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
)
# Up to 9 fractional digits are accepted although string(25) leaves room for only 5 with a "Z":
# Java and .NET emit 6-9 and the extra precision loses nothing (see schemas/NOTES.md).
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
# RFC 3339 as restricted by OCPI 2.2.1+: UTC only, so either "Z" or no designator at all
# ("+00:00 is not the same as UTC").
RFC3339_UTC = f"^{_DATE}T{_TIME}Z?$"
# OCPI 2.1.1 used "the combined date and time format from ISO 8601" and its own examples carry
# offsets such as +02:00, so 2.1.1 additionally accepts a numeric offset.
ISO8601_OFFSET = rf"^{_DATE}T{_TIME}(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?$"


class OcpiModel(BaseModel):
    """Base of every OCPI object model.

    Unknown fields are kept (``extra="allow"``): partners extend objects and 2.3.0 says a platform
    SHALL NOT reject a payload for undocumented fields. ``model_dump_json(exclude_unset=True)``
    therefore reproduces the key set the partner sent, extras included.

    ``strict=True`` means JSON input is never coerced: a number is not a string, ``"true"`` is not
    a boolean. Integers are accepted where the spec says ``number``.
    """

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        # JSON has no NaN/Infinity; the parser would otherwise accept the non-standard literals.
        allow_inf_nan=False,
        # Error messages must not echo partner data (tokens, names) into logs.
        hide_input_in_errors=True,
    )


def String(max_length: int, *, min_length: int = 0, pattern: str | None = None) -> Any:
    """OCPI ``string(n)``: at most ``max_length`` characters, optionally matching ``pattern``.

    The character set is not checked (2.1.1 says printable ASCII, 2.2.1+ printable UTF-8): real
    partners send UTF-8 names in 2.1.1 too, and rejecting them would dead-letter whole Locations.
    """
    return StringConstraints(min_length=min_length or None, max_length=max_length, pattern=pattern)


def CiString(max_length: int | None, *, min_length: int = 0) -> Any:
    """OCPI ``CiString(n)``: printable ASCII of at most ``max_length`` characters, case-insensitive.

    ``None`` for a CiString the spec gives no length (2.3.0 ``Parking.apds_reference``). The
    value is kept as sent; case folding is the job of the consumer (see ``schemas.keys``).
    """
    return StringConstraints(
        min_length=min_length or None, max_length=max_length, pattern=PRINTABLE_ASCII
    )


class _OcpiDateTime:
    """An OCPI DateTime: a JSON string in the OCPI text format, kept as sent.

    One regex in pydantic-core checks the shape and the calendar (numbers, other layouts and
    impossible dates fail). The text is not converted to ``datetime``: that costs more than the
    check itself (13 timestamps in a typical Location) and would re-format the partner's value.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.str_schema(pattern=self.pattern, strict=True)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "date-time", "pattern": self.pattern}


DateTime = Annotated[str, _OcpiDateTime(RFC3339_UTC)]
"""OCPI 2.2.1/2.3.0 DateTime: RFC 3339 in UTC, ``Z`` optional (no designator means UTC)."""

DateTimeIso8601 = Annotated[str, _OcpiDateTime(ISO8601_OFFSET)]
"""OCPI 2.1.1 DateTime: ISO 8601 combined format; ``Z``, a numeric offset, or nothing (UTC)."""

Number = float
"""OCPI ``number``: a JSON number (integers accepted, strings rejected, NaN/Infinity rejected)."""

Int5 = Annotated[int, Field(ge=0, le=99_999)]
"""OCPI ``int(5)``: a non-negative integer of at most five digits (image width/height)."""

URL = Annotated[str, String(255)]
"""OCPI ``URL``: string(255); the text is not parsed, so partners' URLs are kept byte for byte."""


def known_values(*enums: type[StrEnum]) -> tuple[str, ...]:
    """All values of the given enums, in order, without duplicates."""
    seen: dict[str, None] = {}
    for enum in enums:
        for member in enum:
            seen.setdefault(member.value, None)
    return tuple(seen)


class OneOf:
    """Closed enum: the field must be one of the given values (a pydantic-core literal schema).

    Use in ``Annotated[str, OneOf(SpecEnum)]``. ``later`` adds values that later OCPI versions
    added to the same enum: a partner sending them is mis-versioned but the data is meaningful,
    whereas a typo still fails validation and dead-letters the object.
    """

    def __init__(self, spec: type[StrEnum], *later: type[StrEnum]) -> None:
        self.values = known_values(spec, *later)
        self.spec_values = known_values(spec)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.literal_schema(list(self.values))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        value: JsonSchemaValue = {"type": "string", "enum": list(self.values)}
        extra = [v for v in self.values if v not in self.spec_values]
        if extra:
            value["description"] = (
                "Closed enum; also accepts values added by later OCPI versions: "
                + (", ".join(extra))
            )
        return value


class OpenEnum:
    """Open enum: any non-empty string of at most 255 characters is accepted.

    The known values are documented in the JSON Schema (``examples``) and available as
    ``self.values``; an unknown value is kept as sent rather than rejected.
    """

    def __init__(self, *enums: type[StrEnum]) -> None:
        self.values = known_values(*enums)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.str_schema(min_length=1, max_length=255, strict=True)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "description": "Open enum: unknown values are accepted and kept.",
            "examples": list(self.values),
        }


class DisplayText(OcpiModel):
    """Text in a given language (identical in 2.1.1, 2.2.1 and 2.3.0)."""

    language: Annotated[str, String(2)]
    text: Annotated[str, String(512)]
