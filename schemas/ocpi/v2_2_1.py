"""OCPI 2.2.1 object models: Token, Location, Tariff, Session and CDR.

Source: ``ocpi/ocpi`` tag ``2.2.1``: ``mod_tokens.asciidoc`` (Token L351-386),
``mod_locations.asciidoc`` (see ``v2_2_1_locations``), ``mod_tariffs.asciidoc`` (Tariff
L267-284), ``mod_sessions.asciidoc``, ``mod_cdrs.asciidoc``, ``types.asciidoc``.

Every object carries the owner's ``country_code``/``party_id``; identifiers are CiString. Money
is a ``Price`` (``excl_vat`` plus optional ``incl_vat``). ``#NA`` is explicitly allowed for
``Session.evse_uid``/``connector_id`` and ``CdrLocation.evse_uid``/``evse_id``/``connector_id``;
all of them are CiString of 36+ characters, so no special case is needed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import URL, CiString, DateTime, DisplayText, Number, OcpiModel, OneOf, String
from .v2_2_1_enums import (
    AuthMethod,
    Capability,
    CdrDimensionType,
    ConnectorFormat,
    ConnectorType,
    DayOfWeek,
    EnergySourceCategory,
    EnvironmentalImpactCategory,
    Facility,
    ImageCategory,
    ParkingRestriction,
    ParkingType,
    PowerType,
    ProfileType,
    ReservationRestrictionType,
    SessionStatus,
    Status,
    TariffDimensionType,
    TariffType,
    TokenType,
    TokenTypeLater,
    WhitelistType,
)
from .v2_2_1_locations import (
    EVSE,
    AdditionalGeoLocation,
    BusinessDetails,
    Connector,
    ConnectorFormatField,
    ConnectorTypeField,
    CountryCode,
    EnergyMix,
    EnergySource,
    EnvironmentalImpact,
    ExceptionalPeriod,
    GeoLocation,
    Hours,
    Image,
    Location,
    ObjectId,
    PartyId,
    PowerTypeField,
    PublishTokenType,
    RegularHours,
    StatusSchedule,
    TokenTypeField,
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
    "CdrLocation",
    "CdrToken",
    "ChargingPeriod",
    "Connector",
    "ConnectorFormat",
    "ConnectorType",
    "DayOfWeek",
    "EnergyContract",
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
    "ParkingRestriction",
    "ParkingType",
    "PowerType",
    "Price",
    "PriceComponent",
    "ProfileType",
    "PublishTokenType",
    "RegularHours",
    "ReservationRestrictionType",
    "Session",
    "SessionStatus",
    "SignedData",
    "SignedValue",
    "Status",
    "StatusSchedule",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
    "TariffType",
    "Token",
    "TokenType",
    "TokenTypeLater",
    "WhitelistType",
]

HOUR_MINUTE = r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$"
# The 2.2.1 text prints the day as "(0[1-9]|[12][09]|3[01])", which would reject the 24th; the
# intent (and 2.3.0) is [12][0-9].
DATE = r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


# --- Shared by Tariffs, Sessions and CDRs -------------------------------------------------


class Price(OcpiModel):
    """A price or cost; ``excl_vat`` required, ``incl_vat`` optional (2.2.1 only)."""

    excl_vat: Number
    incl_vat: Number | None = None


# --- Tokens -------------------------------------------------------------------------------


class EnergyContract(OcpiModel):
    """The driver's own energy supplier/contract (identical in 2.3.0)."""

    supplier_name: Annotated[str, String(64)]
    contract_id: Annotated[str, String(64)] | None = None


class Token(OcpiModel):
    """A token (2.2.1). Identity: ``country_code``/``party_id``/``uid``/``type``."""

    country_code: CountryCode
    party_id: PartyId
    uid: ObjectId
    type: TokenTypeField
    contract_id: Annotated[str, CiString(36)]
    visual_number: Annotated[str, String(64)] | None = None
    issuer: Annotated[str, String(64)]
    group_id: Annotated[str, CiString(36)] | None = None
    valid: bool
    whitelist: Annotated[str, OneOf(WhitelistType)]
    language: Annotated[str, String(2)] | None = None
    default_profile_type: Annotated[str, OneOf(ProfileType)] | None = None
    energy_contract: EnergyContract | None = None
    last_updated: DateTime


# --- Tariffs ------------------------------------------------------------------------------


class PriceComponent(OcpiModel):
    """Price of one dimension, excluding VAT (identical in 2.3.0)."""

    type: Annotated[str, OneOf(TariffDimensionType)]
    price: Number
    vat: Number | None = None
    step_size: int


class TariffRestrictions(OcpiModel):
    """When a tariff element applies (identical in 2.3.0)."""

    start_time: Annotated[str, String(5, pattern=HOUR_MINUTE)] | None = None
    end_time: Annotated[str, String(5, pattern=HOUR_MINUTE)] | None = None
    start_date: Annotated[str, String(10, pattern=DATE)] | None = None
    end_date: Annotated[str, String(10, pattern=DATE)] | None = None
    min_kwh: Number | None = None
    max_kwh: Number | None = None
    min_current: Number | None = None
    max_current: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[Annotated[str, OneOf(DayOfWeek)]] | None = None
    reservation: Annotated[str, OneOf(ReservationRestrictionType)] | None = None


class TariffElement(OcpiModel):
    """Price components that share restrictions (identical in 2.3.0)."""

    price_components: Annotated[list[PriceComponent], Field(min_length=1)]
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    """A tariff (2.2.1). Identity: ``country_code``/``party_id``/``id``."""

    country_code: CountryCode
    party_id: PartyId
    id: ObjectId
    currency: Annotated[str, String(3)]
    type: Annotated[str, OneOf(TariffType)] | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: URL | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


# --- Sessions -----------------------------------------------------------------------------


class CdrToken(OcpiModel):
    """The token that started a session, as recorded in Sessions and CDRs.

    ``country_code``/``party_id`` are required by the 2.2.1 table but missing from every Session
    and CDR example of the 2.2.1 release (added to the examples only in 2.2.1-d2/2.3.0), so
    2.2.1 partners built from the examples omit them: optional here, required in 2.3.0.
    """

    country_code: Annotated[str, CiString(2)] | None = None
    party_id: Annotated[str, CiString(3)] | None = None
    uid: Annotated[str, CiString(36)]
    type: TokenTypeField
    contract_id: Annotated[str, CiString(36)]


class CdrDimension(OcpiModel):
    """A measured volume of one dimension (identical in 2.3.0)."""

    type: Annotated[str, OneOf(CdrDimensionType)]
    volume: Number


class ChargingPeriod(OcpiModel):
    """A period of a session with its measured dimensions (identical in 2.3.0)."""

    start_date_time: DateTime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1)]
    tariff_id: Annotated[str, CiString(36)] | None = None


AuthMethodField = Annotated[str, OneOf(AuthMethod)]


class Session(OcpiModel):
    """A charging session (2.2.1). Identity: ``country_code``/``party_id``/``id``."""

    country_code: CountryCode
    party_id: PartyId
    id: ObjectId
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    kwh: Number
    cdr_token: CdrToken
    auth_method: AuthMethodField
    authorization_reference: Annotated[str, CiString(36)] | None = None
    location_id: Annotated[str, CiString(36)]
    evse_uid: Annotated[str, CiString(36)]
    connector_id: Annotated[str, CiString(36)]
    meter_id: Annotated[str, String(255)] | None = None
    currency: Annotated[str, String(3)]
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None
    status: Annotated[str, OneOf(SessionStatus)]
    last_updated: DateTime


# --- CDRs ---------------------------------------------------------------------------------


class CdrLocation(OcpiModel):
    """The parts of a Location a CDR needs, frozen at session start."""

    id: Annotated[str, CiString(36)]
    name: Annotated[str, String(255)] | None = None
    address: Annotated[str, String(45)]
    city: Annotated[str, String(45)]
    postal_code: Annotated[str, String(10)] | None = None
    state: Annotated[str, String(20)] | None = None
    country: Annotated[str, String(3)]
    coordinates: GeoLocation
    evse_uid: Annotated[str, CiString(36)]
    evse_id: Annotated[str, CiString(48)]
    connector_id: Annotated[str, CiString(36)]
    connector_standard: ConnectorTypeField
    connector_format: ConnectorFormatField
    connector_power_type: PowerTypeField


class SignedValue(OcpiModel):
    """One signed meter value and its plain-text counterpart (identical in 2.3.0)."""

    nature: Annotated[str, CiString(32)]
    plain_data: Annotated[str, String(512)]
    signed_data: Annotated[str, String(5000)]


class SignedData(OcpiModel):
    """Signed metering data, e.g. for German Eichrecht (identical in 2.3.0)."""

    encoding_method: Annotated[str, CiString(36)]
    encoding_method_version: int | None = None
    public_key: Annotated[str, String(512)] | None = None
    signed_values: Annotated[list[SignedValue], Field(min_length=1)]
    url: Annotated[str, String(512)] | None = None


class Cdr(OcpiModel):
    """A charge detail record (2.2.1). Identity: ``country_code``/``party_id``/``id``.

    ``id`` is CiString(39) so credit CDRs can append to the original id.
    """

    country_code: CountryCode
    party_id: PartyId
    id: Annotated[str, CiString(39, min_length=1)]
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: Annotated[str, CiString(36)] | None = None
    cdr_token: CdrToken
    auth_method: AuthMethodField
    authorization_reference: Annotated[str, CiString(36)] | None = None
    cdr_location: CdrLocation
    meter_id: Annotated[str, String(255)] | None = None
    currency: Annotated[str, String(3)]
    tariffs: list[Tariff] | None = None
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1)]
    signed_data: SignedData | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Number
    total_energy_cost: Price | None = None
    total_time: Number
    total_time_cost: Price | None = None
    total_parking_time: Number | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: Annotated[str, String(255)] | None = None
    invoice_reference_id: Annotated[str, CiString(39)] | None = None
    credit: bool | None = None
    credit_reference_id: Annotated[str, CiString(39)] | None = None
    home_charging_compensation: bool | None = None
    last_updated: DateTime
