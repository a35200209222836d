"""OCPI 2.3.0 object models, written as a delta on 2.2.1.

Sources: ``ocpi/ocpi`` tag ``v2.3.0``: the example objects (``examples/``) and the tables of
``mod_tokens``, ``mod_locations``, ``mod_tariffs``, ``mod_sessions``, ``mod_cdrs`` and ``types``
(field names, cardinality, lengths, CiString or string, enum values, enum or OpenEnum), with the
corrections of tag ``v2.3.0-ed2`` where that edition fixed a misprint (schemas/NOTES.md).

What 2.3.0 changes, per module (everything else is reused from 2.2.1 unchanged):

* all modules: ``Price`` is ``{before_taxes, taxes[]}`` (was ``{excl_vat, incl_vat}``); several
  enums became OpenEnums (TokenType, ConnectorType, Capability, Facility, ImageCategory,
  ParkingType, ParkingRestriction, EnvironmentalImpactCategory); ``#NA`` is allowed in required
  string fields whose data cannot exist.
* tokens: ``TokenType`` is open and gains ``EMAID``; ``CdrToken`` requires
  ``country_code``/``party_id``.
* locations: ``help_phone``; ``parking_places`` (new ``Parking`` object, EU AFIR) referenced from
  ``EVSE.parking``; ``EVSE.accepted_service_providers``; ``Connector.capabilities``
  (``ConnectorCapability``); ConnectorType gains ``MCS`` and ``SAE_J3400``; ParkingRestriction
  gains ``EMPLOYEES``, ``TAXIS``, ``TENANTS``; ``address``/``state`` are string(255)/string(45).
* tariffs: ``tax_included`` (``TaxIncluded``) is required; ``min_price``/``max_price`` are a
  ``PriceLimit``; ``preauthorize_amount``.
* sessions and cdrs: the new ``Price`` and ``CdrToken``; ``CdrLocation.connector_standard`` is
  open; ``Cdr.tariffs`` holds ``CdrTariff`` (``tax_included`` optional, see its docstring).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from . import v2_2_1 as v221
from .base import URL, CiString, DateTime, DisplayText, Number, OcpiModel, OneOf, OpenEnum, String
from .v2_2_1 import (
    AdditionalGeoLocation,
    AuthMethod,
    CdrDimension,
    CdrDimensionType,
    ChargingPeriod,
    ConnectorFormat,
    DayOfWeek,
    EnergyContract,
    EnergySource,
    EnergySourceCategory,
    ExceptionalPeriod,
    GeoLocation,
    Hours,
    PowerType,
    PriceComponent,
    ProfileType,
    RegularHours,
    ReservationRestrictionType,
    SessionStatus,
    SignedData,
    SignedValue,
    Status,
    StatusSchedule,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    TariffType,
    WhitelistType,
)
from .v2_2_1_enums import (
    Capability,
    EnvironmentalImpactCategory,
    Facility,
    ImageCategory,
    ParkingType,
)
from .v2_2_1_locations import CountryCode, ObjectId, PartyId, StatusField

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
    "CdrTariff",
    "CdrToken",
    "ChargingPeriod",
    "Connector",
    "ConnectorCapability",
    "ConnectorFormat",
    "ConnectorType",
    "DayOfWeek",
    "EVSEParking",
    "EVSEPosition",
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
    "Parking",
    "ParkingDirection",
    "ParkingRestriction",
    "ParkingType",
    "PowerType",
    "Price",
    "PriceComponent",
    "PriceLimit",
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
    "TaxAmount",
    "TaxIncluded",
    "Token",
    "TokenType",
    "VehicleType",
    "WhitelistType",
]


# --- Enums new or changed in 2.3.0 --------------------------------------------------------


class TokenType(StrEnum):
    """Type of a token; an OpenEnum in 2.3.0."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    EMAID = "EMAID"
    OTHER = "OTHER"
    RFID = "RFID"


class ConnectorType(StrEnum):
    """The socket or plug standard (2.3.0 list: 2.2.1 plus MCS and SAE_J3400); an OpenEnum."""

    CHADEMO = "CHADEMO"
    CHAOJI = "CHAOJI"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    DOMESTIC_M = "DOMESTIC_M"
    DOMESTIC_N = "DOMESTIC_N"
    DOMESTIC_O = "DOMESTIC_O"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"
    IEC_60309_2_single_16 = "IEC_60309_2_single_16"
    IEC_60309_2_three_16 = "IEC_60309_2_three_16"
    IEC_60309_2_three_32 = "IEC_60309_2_three_32"
    IEC_60309_2_three_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    MCS = "MCS"
    NEMA_5_20 = "NEMA_5_20"
    NEMA_6_30 = "NEMA_6_30"
    NEMA_6_50 = "NEMA_6_50"
    NEMA_10_30 = "NEMA_10_30"
    NEMA_10_50 = "NEMA_10_50"
    NEMA_14_30 = "NEMA_14_30"
    NEMA_14_50 = "NEMA_14_50"
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP"
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN"
    SAE_J3400 = "SAE_J3400"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class ParkingRestriction(StrEnum):
    """Parking restrictions (2.3.0: adds EMPLOYEES, TAXIS, TENANTS); an OpenEnum."""

    CUSTOMERS = "CUSTOMERS"
    DISABLED = "DISABLED"
    EMPLOYEES = "EMPLOYEES"
    EV_ONLY = "EV_ONLY"
    MOTORCYCLES = "MOTORCYCLES"
    PLUGGED = "PLUGGED"
    TAXIS = "TAXIS"
    TENANTS = "TENANTS"


class ConnectorCapability(StrEnum):
    """Functionalities a Connector supports (new in 2.3.0, OpenEnum)."""

    ISO_15118_2_PLUG_AND_CHARGE = "ISO_15118_2_PLUG_AND_CHARGE"
    ISO_15118_20_PLUG_AND_CHARGE = "ISO_15118_20_PLUG_AND_CHARGE"


class VehicleType(StrEnum):
    """Vehicle types a parking place accommodates (new in 2.3.0, OpenEnum)."""

    MOTORCYCLE = "MOTORCYCLE"
    PERSONAL_VEHICLE = "PERSONAL_VEHICLE"
    PERSONAL_VEHICLE_WITH_TRAILER = "PERSONAL_VEHICLE_WITH_TRAILER"
    VAN = "VAN"
    SEMI_TRACTOR = "SEMI_TRACTOR"
    RIGID = "RIGID"
    TRUCK_WITH_TRAILER = "TRUCK_WITH_TRAILER"
    BUS = "BUS"
    DISABLED = "DISABLED"


class ParkingDirection(StrEnum):
    """How a vehicle parks relative to the roadway (new in 2.3.0)."""

    PARALLEL = "PARALLEL"
    PERPENDICULAR = "PERPENDICULAR"
    ANGLE = "ANGLE"


class EVSEPosition(StrEnum):
    """Position of an EVSE relative to its parking space (new in 2.3.0)."""

    LEFT = "LEFT"
    RIGHT = "RIGHT"
    CENTER = "CENTER"


class TaxIncluded(StrEnum):
    """Whether a Tariff's prices include taxes (new in 2.3.0)."""

    YES = "YES"
    NO = "NO"
    NOT_APPLICABLE = "N/A"


TokenTypeField = Annotated[str, OpenEnum(TokenType)]
ConnectorTypeField = Annotated[str, OpenEnum(ConnectorType)]
ImageCategoryField = Annotated[str, OpenEnum(ImageCategory)]
EnvironmentalImpactCategoryField = Annotated[str, OpenEnum(EnvironmentalImpactCategory)]


# --- Money --------------------------------------------------------------------------------


class TaxAmount(OcpiModel):
    """One tax applied to a Price (new in 2.3.0; no lengths are given for the strings)."""

    name: str
    account_number: str | None = None
    percentage: Number | None = None
    amount: Number


class Price(OcpiModel):
    """A price or cost in 2.3.0: the amount before taxes plus the itemised taxes."""

    before_taxes: Number
    taxes: list[TaxAmount] | None = None


class PriceLimit(OcpiModel):
    """Minimum or maximum cost of a session (Tariff ``min_price``/``max_price`` in 2.3.0)."""

    before_taxes: Number
    after_taxes: Number | None = None


# --- Tokens -------------------------------------------------------------------------------


class Token(v221.Token):
    """A token (2.3.0): as 2.2.1, but ``type`` is an OpenEnum (and knows ``EMAID``)."""

    type: TokenTypeField


class CdrToken(v221.CdrToken):
    """The token that started a session; in 2.3.0 ``country_code``/``party_id`` are required."""

    country_code: Annotated[str, CiString(2)]
    party_id: Annotated[str, CiString(3)]
    type: TokenTypeField


# --- Locations ----------------------------------------------------------------------------


class Image(v221.Image):
    """An image; ``category`` is an OpenEnum in 2.3.0."""

    category: ImageCategoryField


class BusinessDetails(v221.BusinessDetails):
    """Operator, suboperator or owner, with the 2.3.0 Image."""

    logo: Image | None = None


class EnvironmentalImpact(v221.EnvironmentalImpact):
    """Waste or emission per kWh; ``category`` is an OpenEnum in 2.3.0."""

    category: EnvironmentalImpactCategoryField


class EnergyMix(OcpiModel):
    """Energy mix, with the 2.3.0 EnvironmentalImpact."""

    is_green_energy: bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, String(64)] | None = None
    energy_product_name: Annotated[str, String(64)] | None = None


class PublishTokenType(v221.PublishTokenType):
    """A token that may see an unpublished Location; ``type`` is an OpenEnum in 2.3.0."""

    type: TokenTypeField | None = None


class Connector(v221.Connector):
    """A Connector; ``standard`` is open (adds MCS, SAE_J3400), plus ``capabilities``."""

    standard: ConnectorTypeField
    capabilities: list[Annotated[str, OpenEnum(ConnectorCapability)]] | None = None


class EVSEParking(OcpiModel):
    """Link from an EVSE to a Parking of its Location (2.3.0 later editions)."""

    parking_id: Annotated[str, CiString(36)]
    evse_position: Annotated[str, OneOf(EVSEPosition)] | None = None


class Parking(OcpiModel):
    """A parking place usable while charging (new in 2.3.0, for EU AFIR reporting)."""

    id: Annotated[str, CiString(36)]
    physical_reference: Annotated[str, String(12)] | None = None
    vehicle_types: Annotated[list[Annotated[str, OpenEnum(VehicleType)]], Field(min_length=1)]
    max_vehicle_weight: Number | None = None
    max_vehicle_height: Number | None = None
    max_vehicle_length: Number | None = None
    max_vehicle_width: Number | None = None
    parking_space_length: Number | None = None
    parking_space_width: Number | None = None
    dangerous_goods_allowed: bool | None = None
    direction: Annotated[str, OneOf(ParkingDirection)] | None = None
    drive_through: bool | None = None
    restricted_to_type: bool
    reservation_required: bool
    time_limit: Number | None = None
    roofed: bool | None = None
    images: list[Image] | None = None
    lighting: bool | None = None
    refrigeration_outlet: bool | None = None
    standards: list[Annotated[str, CiString(36)]] | None = None
    apds_reference: Annotated[str, CiString(None)] | None = None


def _parking_ref_kind(value: Any) -> str:
    # The v2.3.0 examples list Parking ids as strings; later 2.3.0 editions define an
    # EVSEParking object. Both are accepted, told apart by JSON type. Tags are CamelCase so
    # error paths can leave them out (schemas.validation).
    return "EVSEParking" if isinstance(value, dict | EVSEParking) else "ParkingId"


ParkingRef = Annotated[
    Annotated[Annotated[str, CiString(36)], Tag("ParkingId")]
    | Annotated[EVSEParking, Tag("EVSEParking")],
    Discriminator(_parking_ref_kind),
]


class EVSE(OcpiModel):
    """An EVSE (2.3.0): adds ``parking`` and ``accepted_service_providers``."""

    uid: Annotated[str, CiString(36)]
    evse_id: Annotated[str, CiString(48)] | None = None
    status: StatusField
    status_schedule: list[StatusSchedule] | None = None
    capabilities: list[Annotated[str, OpenEnum(Capability)]] | None = None
    connectors: Annotated[list[Connector], Field(min_length=1)]
    floor_level: Annotated[str, String(4)] | None = None
    coordinates: GeoLocation | None = None
    physical_reference: Annotated[str, String(16)] | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[Annotated[str, OpenEnum(ParkingRestriction)]] | None = None
    parking: list[ParkingRef] | None = None
    images: list[Image] | None = None
    accepted_service_providers: list[Annotated[str, String(50)]] | None = None
    last_updated: DateTime


class Location(OcpiModel):
    """A charging location (2.3.0). Identity: ``country_code``/``party_id``/``id``."""

    country_code: CountryCode
    party_id: PartyId
    id: ObjectId
    publish: bool
    publish_allowed_to: list[PublishTokenType] | None = None
    name: Annotated[str, String(255)] | None = None
    address: Annotated[str, String(255)]
    city: Annotated[str, String(45)]
    postal_code: Annotated[str, String(10)] | None = None
    state: Annotated[str, String(45)] | None = None
    country: Annotated[str, String(3)]
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    parking_type: Annotated[str, OpenEnum(ParkingType)] | None = None
    evses: list[EVSE] | None = None
    parking_places: list[Parking] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[Annotated[str, OpenEnum(Facility)]] | None = None
    time_zone: Annotated[str, String(255)]
    opening_times: Hours | None = None
    charging_when_closed: bool | None = None
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    help_phone: Annotated[str, CiString(25)] | None = None
    last_updated: DateTime


# --- Tariffs ------------------------------------------------------------------------------


class _TariffFields(OcpiModel):
    """The Tariff fields common to a Tariff and the copy of one inside a CDR."""

    country_code: CountryCode
    party_id: PartyId
    id: ObjectId
    currency: Annotated[str, String(3)]
    type: Annotated[str, OneOf(TariffType)] | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: URL | None = None
    min_price: PriceLimit | None = None
    max_price: PriceLimit | None = None
    preauthorize_amount: Number | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime


TaxIncludedField = Annotated[str, OneOf(TaxIncluded)]


class Tariff(_TariffFields):
    """A tariff (2.3.0). Identity: ``country_code``/``party_id``/``id``."""

    tax_included: TaxIncludedField


class CdrTariff(_TariffFields):
    """A Tariff as embedded in a 2.3.0 CDR: ``tax_included`` is optional here.

    The CDR example of the v2.3.0 release embeds a tariff without ``tax_included``; the CDR is
    the billing record (its totals carry the taxes explicitly), so its tariff snapshot must not
    make the whole CDR fail.
    """

    tax_included: TaxIncludedField | None = None


# --- Sessions and CDRs --------------------------------------------------------------------

AuthMethodField = Annotated[str, OneOf(AuthMethod)]


class Session(OcpiModel):
    """A charging session (2.3.0). Identity: ``country_code``/``party_id``/``id``."""

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


class CdrLocation(v221.CdrLocation):
    """The Location part of a CDR; ``connector_standard`` is an OpenEnum in 2.3.0."""

    connector_standard: ConnectorTypeField


class Cdr(OcpiModel):
    """A charge detail record (2.3.0). Identity: ``country_code``/``party_id``/``id``."""

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
    tariffs: list[CdrTariff] | None = None
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
