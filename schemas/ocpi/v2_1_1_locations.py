"""OCPI 2.1.1 Locations module: Location, EVSE, Connector and their nested types.

Source: ``ocpi/ocpi`` release-2.1.1-bugfixes (2.1.1-d2), ``mod_locations.md`` sections 3 and 4.
Differences to 2.2.1 worth knowing: no ``country_code``/``party_id``/``publish``; ``type``
(LocationType) is required and ``time_zone`` optional; ``postal_code`` is required; ids are
case-sensitive ``string`` (not CiString); the Connector has ``voltage``/``amperage`` and a single
``tariff_id``; ``EnvironmentalImpact`` names its category field ``source``; coordinates need
exactly six decimals; ``Hours`` is a choice of ``regular_hours`` or ``twentyfourseven``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .base import (
    URL,
    DateTimeIso8601,
    DisplayText,
    Int5,
    Number,
    OcpiModel,
    OneOf,
    OpenEnum,
    String,
)

DateTime = DateTimeIso8601

# 2.1.1 regexes (2.2 widened the coordinate decimals to 5-7 and tightened the hour to 00-23).
LATITUDE = r"^-?[0-9]{1,2}\.[0-9]{6}$"
LONGITUDE = r"^-?[0-9]{1,3}\.[0-9]{6}$"
HOUR_MINUTE = r"^[0-2][0-9]:[0-5][0-9]$"


class Capability(StrEnum):
    """The capabilities of an EVSE (2.1.1)."""

    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class ConnectorFormat(StrEnum):
    """Socket or attached cable."""

    SOCKET = "SOCKET"
    CABLE = "CABLE"


class ConnectorType(StrEnum):
    """The socket or plug standard (2.1.1 list)."""

    CHADEMO = "CHADEMO"
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
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class EnergySourceCategory(StrEnum):
    """Categories of energy sources."""

    NUCLEAR = "NUCLEAR"
    GENERAL_FOSSIL = "GENERAL_FOSSIL"
    COAL = "COAL"
    GAS = "GAS"
    GENERAL_GREEN = "GENERAL_GREEN"
    SOLAR = "SOLAR"
    WIND = "WIND"
    WATER = "WATER"


class EnvironmentalImpactCategory(StrEnum):
    """Categories of environmental impact values."""

    NUCLEAR_WASTE = "NUCLEAR_WASTE"
    CARBON_DIOXIDE = "CARBON_DIOXIDE"


class Facility(StrEnum):
    """Facilities a charging location belongs to (2.1.1 list)."""

    HOTEL = "HOTEL"
    RESTAURANT = "RESTAURANT"
    CAFE = "CAFE"
    MALL = "MALL"
    SUPERMARKET = "SUPERMARKET"
    SPORT = "SPORT"
    RECREATION_AREA = "RECREATION_AREA"
    NATURE = "NATURE"
    MUSEUM = "MUSEUM"
    BUS_STOP = "BUS_STOP"
    TAXI_STAND = "TAXI_STAND"
    TRAIN_STATION = "TRAIN_STATION"
    AIRPORT = "AIRPORT"
    CARPOOL_PARKING = "CARPOOL_PARKING"
    FUEL_STATION = "FUEL_STATION"
    WIFI = "WIFI"


class ImageCategory(StrEnum):
    """What an image is used for."""

    CHARGER = "CHARGER"
    ENTRANCE = "ENTRANCE"
    LOCATION = "LOCATION"
    NETWORK = "NETWORK"
    OPERATOR = "OPERATOR"
    OTHER = "OTHER"
    OWNER = "OWNER"


class LocationType(StrEnum):
    """General type of the charge point location (2.1.1 only; 2.2 replaced it by ParkingType)."""

    ON_STREET = "ON_STREET"
    PARKING_GARAGE = "PARKING_GARAGE"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class ParkingRestriction(StrEnum):
    """Restrictions of the parking spot (2.1.1 list)."""

    EV_ONLY = "EV_ONLY"
    PLUGGED = "PLUGGED"
    DISABLED = "DISABLED"
    CUSTOMERS = "CUSTOMERS"
    MOTORCYCLES = "MOTORCYCLES"


class PowerType(StrEnum):
    """AC/DC and phases (2.1.1 list)."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class PowerTypeLater(StrEnum):
    """PowerType values added in 2.2, accepted from 2.1.1 partners (closed+later)."""

    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"


class Status(StrEnum):
    """The status of an EVSE."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


# Enum field types: closed ones reject unknown values, open ones keep them (schemas/NOTES.md).
CapabilityField = Annotated[str, OpenEnum(Capability)]
ConnectorFormatField = Annotated[str, OneOf(ConnectorFormat)]
ConnectorTypeField = Annotated[str, OpenEnum(ConnectorType)]
EnergySourceCategoryField = Annotated[str, OneOf(EnergySourceCategory)]
EnvironmentalImpactCategoryField = Annotated[str, OneOf(EnvironmentalImpactCategory)]
FacilityField = Annotated[str, OpenEnum(Facility)]
ImageCategoryField = Annotated[str, OneOf(ImageCategory)]
LocationTypeField = Annotated[str, OneOf(LocationType)]
ParkingRestrictionField = Annotated[str, OpenEnum(ParkingRestriction)]
PowerTypeField = Annotated[str, OneOf(PowerType, PowerTypeLater)]
StatusField = Annotated[str, OneOf(Status)]


class GeoLocation(OcpiModel):
    """WGS 84 coordinates; 2.1.1 requires exactly six decimals."""

    latitude: Annotated[str, String(10, pattern=LATITUDE)]
    longitude: Annotated[str, String(11, pattern=LONGITUDE)]


class AdditionalGeoLocation(OcpiModel):
    """A related point of interest, with an optional name."""

    latitude: Annotated[str, String(10, pattern=LATITUDE)]
    longitude: Annotated[str, String(11, pattern=LONGITUDE)]
    name: DisplayText | None = None


class Image(OcpiModel):
    """An image related to a Location or EVSE."""

    url: URL
    thumbnail: URL | None = None
    category: ImageCategoryField
    type: Annotated[str, String(4)]
    width: Int5 | None = None
    height: Int5 | None = None


class BusinessDetails(OcpiModel):
    """Operator, suboperator or owner."""

    name: Annotated[str, String(100)]
    website: URL | None = None
    logo: Image | None = None


class EnergySource(OcpiModel):
    """One energy source and its percentage of the mix."""

    source: EnergySourceCategoryField
    percentage: Number


class EnvironmentalImpact(OcpiModel):
    """Waste or emission per kWh; the category field is called ``source`` in 2.1.1."""

    source: EnvironmentalImpactCategoryField
    amount: Number


class EnergyMix(OcpiModel):
    """Energy mix and environmental impact of the supplied energy."""

    is_green_energy: bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, String(64)] | None = None
    energy_product_name: Annotated[str, String(64)] | None = None


class ExceptionalPeriod(OcpiModel):
    """One exceptional opening or closing period."""

    period_begin: DateTime
    period_end: DateTime


class RegularHours(OcpiModel):
    """Regular weekly opening hours for one weekday."""

    weekday: Annotated[int, Field(ge=1, le=7)]
    period_begin: Annotated[str, String(5, pattern=HOUR_MINUTE)]
    period_end: Annotated[str, String(5, pattern=HOUR_MINUTE)]


class Hours(OcpiModel):
    """Opening hours. The spec calls ``regular_hours``/``twentyfourseven`` a choice, yet its own
    example sends both, so neither is required and both may be present."""

    regular_hours: list[RegularHours] | None = None
    twentyfourseven: bool | None = None
    exceptional_openings: list[ExceptionalPeriod] | None = None
    exceptional_closings: list[ExceptionalPeriod] | None = None


class StatusSchedule(OcpiModel):
    """A planned status of an EVSE."""

    period_begin: DateTime
    period_end: DateTime | None = None
    status: StatusField


class Connector(OcpiModel):
    """A socket or cable of an EVSE."""

    id: Annotated[str, String(36)]
    standard: ConnectorTypeField
    format: ConnectorFormatField
    power_type: PowerTypeField
    voltage: int
    amperage: int
    tariff_id: Annotated[str, String(36)] | None = None
    terms_and_conditions: URL | None = None
    last_updated: DateTime


class EVSE(OcpiModel):
    """The part that controls the power supply to a single EV."""

    uid: Annotated[str, String(39)]
    evse_id: Annotated[str, String(48)] | None = None
    status: StatusField
    status_schedule: list[StatusSchedule] | None = None
    capabilities: list[CapabilityField] | None = None
    connectors: Annotated[list[Connector], Field(min_length=1)]
    floor_level: Annotated[str, String(4)] | None = None
    coordinates: GeoLocation | None = None
    physical_reference: Annotated[str, String(16)] | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[ParkingRestrictionField] | None = None
    images: list[Image] | None = None
    last_updated: DateTime


class Location(OcpiModel):
    """A charging location (2.1.1). Identity: partner + ``id`` (case-sensitive)."""

    id: Annotated[str, String(39, min_length=1)]
    type: LocationTypeField
    name: Annotated[str, String(255)] | None = None
    address: Annotated[str, String(45)]
    city: Annotated[str, String(45)]
    postal_code: Annotated[str, String(10)]
    country: Annotated[str, String(3)]
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    evses: list[EVSE] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[FacilityField] | None = None
    time_zone: Annotated[str, String(255)] | None = None
    opening_times: Hours | None = None
    charging_when_closed: bool | None = None
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime
