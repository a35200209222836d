"""Dialects: the ways real OCPI servers write valid data differently from the spec's examples.

Each is a pure rewrite of a freshly rendered object (in place), switched on by `--dialect`:

* `space-timestamps`: every DateTime as `2024-03-04 03:00:00+00:00` (Python's `str(datetime)`,
  as FastAPI servers write them): a space instead of `T`, a numeric offset instead of `Z`;
* `fractions`: fractional seconds of varied length (1 to 9 digits, all zeros, so the instant and
  the ground truth do not change): `2024-03-04T03:00:00.000Z`;
* `no-zone`: no designator at all (`2024-03-04T03:00:00`), which OCPI reads as UTC;
* `lowercase`: values of case-insensitive strings in lower case: enum values in every version,
  and in 2.2.1/2.3.0 also the CiString fields (`country_code`, `party_id`, ids, `uid`...);
  2.1.1 ids are case-sensitive strings and stay as they are;
* `nulls`: `null` for every absent optional field (top level, and a Location's EVSEs and
  Connectors), as serialisers that write every attribute do.

Keys: schemas.keys upper-cases CiString key parts, so `lowercase` leaves the keys of locations,
tariffs, sessions and CDRs unchanged; a lower-case token `type` is an `enum_case` dialect, which
`--validation lenient` keys by the canonical value (`/RFID`) and `strict` dead-letters.
`served_identity` (and `served` in `/_sandbox/truth` while `lowercase` is on) gives the identity
exactly as sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal, get_args

Dialect = Literal["space-timestamps", "lowercase", "nulls", "fractions", "no-zone"]
DIALECTS: Final[tuple[Dialect, ...]] = get_args(Dialect)
FRACTION_DIGITS: Final = (3, 1, 6, 9, 2)

# Enum-valued fields (case-insensitive per the brief of every version).
_ENUM_FIELDS: Final = frozenset(
    {
        "type",
        "whitelist",
        "default_profile_type",
        "status",
        "capabilities",
        "standard",
        "format",
        "power_type",
        "parking_type",
        "auth_method",
        "connector_standard",
        "connector_format",
        "connector_power_type",
        "tax_included",
        "vehicle_types",
        "category",
        "facilities",
        "parking_restrictions",
        "day_of_week",
        "source",
    }
)
# CiString fields of 2.2.1 and 2.3.0 (2.1.1 has plain, case-sensitive strings).
_CI_STRING_FIELDS: Final = frozenset(
    {
        "country_code",
        "party_id",
        "id",
        "uid",
        "contract_id",
        "group_id",
        "evse_uid",
        "evse_id",
        "location_id",
        "connector_id",
        "tariff_id",
        "tariff_ids",
        "session_id",
        "authorization_reference",
        "parking",
        "parking_id",
        "invoice_reference_id",
        "credit_reference_id",
    }
)

_OPTIONAL_221: Final[dict[str, tuple[str, ...]]] = {
    "tokens": ("visual_number", "group_id", "language", "default_profile_type", "energy_contract"),
    "locations": (
        "publish_allowed_to",
        "name",
        "postal_code",
        "state",
        "related_locations",
        "parking_type",
        "evses",
        "directions",
        "operator",
        "suboperator",
        "owner",
        "facilities",
        "opening_times",
        "charging_when_closed",
        "images",
        "energy_mix",
    ),
    "tariffs": (
        "type",
        "tariff_alt_text",
        "tariff_alt_url",
        "min_price",
        "max_price",
        "start_date_time",
        "end_date_time",
        "energy_mix",
    ),
    "sessions": (
        "end_date_time",
        "authorization_reference",
        "meter_id",
        "charging_periods",
        "total_cost",
    ),
    "cdrs": (
        "session_id",
        "authorization_reference",
        "meter_id",
        "tariffs",
        "signed_data",
        "total_fixed_cost",
        "total_energy_cost",
        "total_time_cost",
        "total_parking_time",
        "total_parking_cost",
        "total_reservation_cost",
        "remark",
        "invoice_reference_id",
        "credit",
        "credit_reference_id",
        "home_charging_compensation",
    ),
    "evse": (
        "evse_id",
        "status_schedule",
        "capabilities",
        "floor_level",
        "coordinates",
        "physical_reference",
        "directions",
        "parking_restrictions",
        "images",
    ),
    "connector": ("max_electric_power", "tariff_ids", "terms_and_conditions"),
}
_OPTIONAL_230_EXTRA: Final[dict[str, tuple[str, ...]]] = {
    "locations": ("parking_places", "help_phone"),
    "tariffs": ("preauthorize_amount",),
    "evse": ("parking", "accepted_service_providers"),
    "connector": ("capabilities",),
}
_OPTIONAL_211: Final[dict[str, tuple[str, ...]]] = {
    "tokens": ("visual_number", "language"),
    "locations": (
        "name",
        "related_locations",
        "evses",
        "directions",
        "operator",
        "suboperator",
        "owner",
        "facilities",
        "time_zone",
        "opening_times",
        "charging_when_closed",
        "images",
        "energy_mix",
    ),
    "tariffs": ("tariff_alt_text", "tariff_alt_url", "energy_mix"),
    "sessions": ("end_datetime", "meter_id", "charging_periods", "total_cost"),
    "cdrs": ("meter_id", "tariffs", "total_parking_time", "remark"),
    "evse": _OPTIONAL_221["evse"],
    "connector": ("tariff_id", "terms_and_conditions"),
}


def optional_fields(version: str, kind: str) -> tuple[str, ...]:
    """Optional fields of a module's object (or of an `evse`/`connector`) in `version`."""
    if version == "2.1.1":
        return _OPTIONAL_211[kind]
    extra = _OPTIONAL_230_EXTRA.get(kind, ()) if version == "2.3.0" else ()
    return _OPTIONAL_221[kind] + extra


def parse_dialects(names: tuple[str, ...]) -> tuple[Dialect, ...]:
    """Dialect names checked (ValueError for an unknown one), in a fixed order."""
    unknown = [name for name in names if name not in DIALECTS]
    if unknown:
        raise ValueError(
            f"unknown dialect {', '.join(unknown)} (choose from {', '.join(DIALECTS)})"
        )
    return tuple(d for d in DIALECTS if d in names)


def looks_like_datetime(text: str) -> bool:
    """Whether `text` is a DateTime as the generator writes it (`YYYY-MM-DDTHH:MM:SSZ`)."""
    return len(text) == 20 and text[10] == "T" and text[19] == "Z" and text[4] == "-"


def rewrite_datetime(text: str, *, space: bool, no_zone: bool, fraction_digits: int) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in a dialect: separator, zero fraction, zone designator."""
    fraction = "." + "0" * fraction_digits if fraction_digits else ""
    zone = "" if no_zone else ("+00:00" if space else "Z")
    return f"{text[:10]}{' ' if space else 'T'}{text[11:19]}{fraction}{zone}"


def _null_absent(obj: dict[str, Any], fields: tuple[str, ...]) -> None:
    for name in fields:
        if name not in obj:
            obj[name] = None


def _ascii_lower(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower() if value.isascii() else value
    if isinstance(value, list):
        return [_ascii_lower(item) for item in value]
    return value


class DialectWriter:
    """Rewrites objects of one module and version in the chosen dialects."""

    def __init__(self, dialects: tuple[Dialect, ...], module: str, version: str) -> None:
        self.dialects = dialects
        self.nulls = "nulls" in dialects
        self.module = module
        self.version = version
        if "lowercase" in dialects:
            self.lower_fields = _ENUM_FIELDS | (_CI_STRING_FIELDS if version != "2.1.1" else set())
        else:
            self.lower_fields = frozenset()
        self.stamps = bool({"space-timestamps", "fractions", "no-zone"} & set(dialects))

    def timestamp(self, text: str, n: int = 0) -> str:
        """One DateTime in this dialect; `n` varies the fraction length."""
        digits = FRACTION_DIGITS[n % len(FRACTION_DIGITS)] if "fractions" in self.dialects else 0
        return rewrite_datetime(
            text,
            space="space-timestamps" in self.dialects,
            no_zone="no-zone" in self.dialects,
            fraction_digits=digits,
        )

    def write(self, obj: dict[str, Any], index: int) -> dict[str, Any]:
        """Rewrite object *index* in place (the same object always comes out the same)."""
        if self.nulls:
            _null_absent(obj, optional_fields(self.version, self.module))
            if self.module == "locations":
                for evse in obj.get("evses") or ():
                    _null_absent(evse, optional_fields(self.version, "evse"))
                    for connector in evse["connectors"]:
                        _null_absent(connector, optional_fields(self.version, "connector"))
        if self.lower_fields or self.stamps:
            self._walk(obj, self._stamper(index))
        return obj

    def _stamper(self, index: int) -> Callable[[str], str]:
        # Fraction lengths cycle through the object's DateTimes, starting at its index.
        seen = [index]

        def stamp(text: str) -> str:
            seen[0] += 1
            return self.timestamp(text, seen[0])

        return stamp

    def _walk(self, obj: dict[str, Any], stamp: Callable[[str], str]) -> None:
        lower_fields = self.lower_fields
        for key, value in obj.items():
            if key in lower_fields:
                obj[key] = _ascii_lower(value)
            elif isinstance(value, str):
                if self.stamps and looks_like_datetime(value):
                    obj[key] = stamp(value)
            elif isinstance(value, dict):
                self._walk(value, stamp)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        self._walk(item, stamp)


def served_identity(record: dict[str, Any], version: str, dialects: tuple[Dialect, ...]) -> Any:
    """The identity fields of a truth record as the objects carry them in `version`."""
    if "lowercase" not in dialects:
        return {k: record[k] for k in ("country_code", "party_id", "id", "type") if k in record}
    ci = version != "2.1.1"
    served: dict[str, Any] = {}
    for name in ("country_code", "party_id", "id"):
        served[name] = record[name].lower() if ci else record[name]
    if "type" in record:
        served["type"] = record["type"].lower()
    return served
