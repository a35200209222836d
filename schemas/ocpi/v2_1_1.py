"""OCPI 2.1.1 object models: Token, Location, Tariff, Session and CDR.

Source: ``ocpi/ocpi`` release-2.1.1-bugfixes (published as 2.1.1-d2): ``mod_tokens.md``,
``mod_locations.md``, ``mod_tariffs.md``, ``mod_sessions.md``, ``mod_cdrs.md``, ``types.md``.

2.1.1 objects carry no ``country_code``/``party_id``: the owner is the partner of the connection.
Identifiers are case-sensitive ``string(n)`` except the CDR ``id``, which the 2.1.1 table types as
``CiString(36)``. Money is a plain ``number`` (excluding VAT); there is no ``Price`` class.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .base import URL, CiString, DisplayText, Number, OcpiModel, OneOf, String
from .v2_1_1_locations import (
    EVSE,
    AdditionalGeoLocation,
    BusinessDetails,
    Capability,
    Connector,
    ConnectorFormat,
    ConnectorType,
    DateTime,
    EnergyMix,
    EnergySource,
    EnergySourceCategory,
    EnvironmentalImpact,
    EnvironmentalImpactCategory,
    ExceptionalPeriod,
    Facility,
    GeoLocation,
    Hours,
    Image,
    ImageCategory,
    Location,
    LocationType,
    ParkingRestriction,
    PowerType,
    RegularHours,
    Status,
    StatusSchedule,
)

__all__ = [
    "EVSE",
    "AdditionalGeoLocation",
    "AuthMethod",
    "BusinessDetails",
    "Capability",
    "Cdr",
    "CdrDimension",
    "CdrDimensionType",
    "ChargingPeriod",
    "Connector",
    "ConnectorFormat",
    "ConnectorType",
    "DayOfWeek",
    "EnergyMix",
    "EnergySource",
    "EnergySourceCategory",
    "EnvironmentalImpact",
    "EnvironmentalImpactCategory",
    "ExceptionalPeriod",
    "Facility",
    "GeoLocation",
    "Hours",
    "Image",
    "ImageCategory",
    "Location",
    "LocationType",
    "ParkingRestriction",
    "PowerType",
    "PriceComponent",
    "RegularHours",
    "Session",
    "SessionStatus",
    "Status",
    "StatusSchedule",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
    "Token",
    "TokenType",
    "WhitelistType",
]

HOUR_MINUTE = r"^[0-2][0-9]:[0-5][0-9]$"


# --- Tokens -------------------------------------------------------------------------------


class TokenType(StrEnum):
    """Type of a token (2.1.1)."""

    OTHER = "OTHER"
    RFID = "RFID"


class TokenTypeLater(StrEnum):
    """TokenType values of 2.2/2.3, accepted from 2.1.1 partners (closed+later)."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    EMAID = "EMAID"


class WhitelistType(StrEnum):
    """When a CPO may authorize a token without asking the eMSP."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class Token(OcpiModel):
    """A token (2.1.1). Identity: partner + ``uid`` + ``type``; ``uid`` is case-sensitive."""

    uid: Annotated[str, String(36, min_length=1)]
    type: Annotated[str, OneOf(TokenType, TokenTypeLater)]
    auth_id: Annotated[str, String(36)]
    visual_number: Annotated[str, String(64)] | None = None
    issuer: Annotated[str, String(64)]
    valid: bool
    whitelist: Annotated[str, OneOf(WhitelistType)]
    language: Annotated[str, String(2)] | None = None
    last_updated: DateTime


# --- Tariffs ------------------------------------------------------------------------------


class DayOfWeek(StrEnum):
    """Day of the week."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class TariffDimensionType(StrEnum):
    """What a price component prices."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class PriceComponent(OcpiModel):
    """Price of one dimension; ``price`` excludes VAT."""

    type: Annotated[str, OneOf(TariffDimensionType)]
    price: Number
    step_size: int


class TariffRestrictions(OcpiModel):
    """When a tariff element applies. 2.1.1 gives no regex for the dates, only string(10)."""

    start_time: Annotated[str, String(5, pattern=HOUR_MINUTE)] | None = None
    end_time: Annotated[str, String(5, pattern=HOUR_MINUTE)] | None = None
    start_date: Annotated[str, String(10)] | None = None
    end_date: Annotated[str, String(10)] | None = None
    min_kwh: Number | None = None
    max_kwh: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[Annotated[str, OneOf(DayOfWeek)]] | None = None


class TariffElement(OcpiModel):
    """Price components that share restrictions."""

    price_components: Annotated[list[PriceComponent], Field(min_length=1)]
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    """A tariff (2.1.1). Identity: partner + ``id`` (case-sensitive)."""

    id: Annotated[str, String(36, min_length=1)]
    currency: Annotated[str, String(3)]
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: URL | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


# --- Sessions and CDRs --------------------------------------------------------------------


class AuthMethod(StrEnum):
    """How the session was authorized (2.1.1)."""

    AUTH_REQUEST = "AUTH_REQUEST"
    WHITELIST = "WHITELIST"


class AuthMethodLater(StrEnum):
    """AuthMethod value added in 2.2, accepted from 2.1.1 partners (closed+later)."""

    COMMAND = "COMMAND"


class CdrDimensionType(StrEnum):
    """What a CDR dimension measures (2.1.1)."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class CdrDimensionTypeLater(StrEnum):
    """CdrDimensionType values added in 2.2, accepted from 2.1.1 partners (closed+later)."""

    CURRENT = "CURRENT"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"


class SessionStatus(StrEnum):
    """State of a session (2.1.1)."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"


class SessionStatusLater(StrEnum):
    """SessionStatus value added in 2.2, accepted from 2.1.1 partners (closed+later)."""

    RESERVATION = "RESERVATION"


class CdrDimension(OcpiModel):
    """A measured volume of one dimension."""

    type: Annotated[str, OneOf(CdrDimensionType, CdrDimensionTypeLater)]
    volume: Number


class ChargingPeriod(OcpiModel):
    """A period of a session with its measured dimensions."""

    start_date_time: DateTime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1)]


AuthMethodField = Annotated[str, OneOf(AuthMethod, AuthMethodLater)]


class Session(OcpiModel):
    """A charging session (2.1.1). Note ``start_datetime``/``end_datetime`` (no underscore)."""

    id: Annotated[str, String(36, min_length=1)]
    start_datetime: DateTime
    end_datetime: DateTime | None = None
    kwh: Number
    auth_id: Annotated[str, String(36)]
    auth_method: AuthMethodField
    location: Location
    meter_id: Annotated[str, String(255)] | None = None
    currency: Annotated[str, String(3)]
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Number | None = None
    status: Annotated[str, OneOf(SessionStatus, SessionStatusLater)]
    last_updated: DateTime


class Cdr(OcpiModel):
    """A charge detail record (2.1.1). Identity: partner + ``id`` (CiString, case-insensitive)."""

    id: Annotated[str, CiString(36, min_length=1)]
    start_date_time: DateTime
    stop_date_time: DateTime
    auth_id: Annotated[str, String(36)]
    auth_method: AuthMethodField
    location: Location
    meter_id: Annotated[str, String(255)] | None = None
    currency: Annotated[str, String(3)]
    tariffs: list[Tariff] | None = None
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1)]
    total_cost: Number
    total_energy: Number
    total_time: Number
    total_parking_time: Number | None = None
    remark: Annotated[str, String(255)] | None = None
    last_updated: DateTime
