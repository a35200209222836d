"""OCPI 2.2.1 Locations module: Location, EVSE, Connector and their nested types.

Source: ``ocpi/ocpi`` tag ``2.2.1``, ``mod_locations.asciidoc`` (Location L441-490, EVSE L616-647,
Connector L655-683 and the data types after them). Changes against 2.1.1: ``country_code``,
``party_id``, ``publish``/``publish_allowed_to`` and a required ``time_zone``; ids are CiString;
``LocationType`` became ``ParkingType`` (optional); ``postal_code`` became optional; the
Connector has ``max_voltage``/``max_amperage``/``max_electric_power`` and a list ``tariff_ids``;
``EnvironmentalImpact.source`` was renamed ``category``; ``Hours.twentyfourseven`` is required;
coordinates take 5 to 7 decimals.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from .base import (
    URL,
    CiString,
    DateTime,
    DisplayText,
    Int5,
    Number,
    OcpiModel,
    OneOf,
    OpenEnum,
    String,
)
from .v2_2_1_enums import (
    Capability,
    ConnectorFormat,
    ConnectorType,
    EnergySourceCategory,
    EnvironmentalImpactCategory,
    Facility,
    ImageCategory,
    ParkingRestriction,
    ParkingType,
    PowerType,
    Status,
    TokenType,
    TokenTypeLater,
)

LATITUDE = r"^-?[0-9]{1,2}\.[0-9]{5,7}$"
LONGITUDE = r"^-?[0-9]{1,3}\.[0-9]{5,7}$"
HOUR_MINUTE = r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$"

CountryCode = Annotated[str, CiString(2, min_length=1)]
PartyId = Annotated[str, CiString(3, min_length=1)]
ObjectId = Annotated[str, CiString(36, min_length=1)]
"""A CiString(36) that is part of an object's identity (never empty: it would not identify)."""

# Enum field types: closed ones reject unknown values, open ones keep them (schemas/NOTES.md).
CapabilityField = Annotated[str, OpenEnum(Capability)]
ConnectorFormatField = Annotated[str, OneOf(ConnectorFormat)]
ConnectorTypeField = Annotated[str, OpenEnum(ConnectorType)]
EnergySourceCategoryField = Annotated[str, OneOf(EnergySourceCategory)]
EnvironmentalImpactCategoryField = Annotated[str, OneOf(EnvironmentalImpactCategory)]
FacilityField = Annotated[str, OpenEnum(Facility)]
ImageCategoryField = Annotated[str, OneOf(ImageCategory)]
ParkingRestrictionField = Annotated[str, OpenEnum(ParkingRestriction)]
ParkingTypeField = Annotated[str, OneOf(ParkingType)]
PowerTypeField = Annotated[str, OneOf(PowerType)]
StatusField = Annotated[str, OneOf(Status)]
TokenTypeField = Annotated[str, OneOf(TokenType, TokenTypeLater)]


class GeoLocation(OcpiModel):
    """WGS 84 coordinates, 5 to 7 decimals (identical in 2.3.0)."""

    latitude: Annotated[str, String(10, pattern=LATITUDE)]
    longitude: Annotated[str, String(11, pattern=LONGITUDE)]


class AdditionalGeoLocation(OcpiModel):
    """A related point of interest, with an optional name (identical in 2.3.0)."""

    latitude: Annotated[str, String(10, pattern=LATITUDE)]
    longitude: Annotated[str, String(11, pattern=LONGITUDE)]
    name: DisplayText | None = None


class Image(OcpiModel):
    """An image related to a Location, EVSE or business."""

    url: URL
    thumbnail: URL | None = None
    category: ImageCategoryField
    type: Annotated[str, CiString(4)]
    width: Int5 | None = None
    height: Int5 | None = None


class BusinessDetails(OcpiModel):
    """Operator, suboperator or owner."""

    name: Annotated[str, String(100)]
    website: URL | None = None
    logo: Image | None = None


class EnergySource(OcpiModel):
    """One energy source and its percentage of the mix (identical in 2.3.0)."""

    source: EnergySourceCategoryField
    percentage: Number


class EnvironmentalImpact(OcpiModel):
    """Waste or emission per kWh; ``category`` (was ``source`` in 2.1.1)."""

    category: EnvironmentalImpactCategoryField
    amount: Number


class EnergyMix(OcpiModel):
    """Energy mix and environmental impact of the supplied energy."""

    is_green_energy: bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, String(64)] | None = None
    energy_product_name: Annotated[str, String(64)] | None = None


class ExceptionalPeriod(OcpiModel):
    """One exceptional opening or closing period, in UTC (identical in 2.3.0)."""

    period_begin: DateTime
    period_end: DateTime


class RegularHours(OcpiModel):
    """Regular weekly opening hours for one weekday, in local time (identical in 2.3.0)."""

    weekday: Annotated[int, Field(ge=1, le=7)]
    period_begin: Annotated[str, String(5, pattern=HOUR_MINUTE)]
    period_end: Annotated[str, String(5, pattern=HOUR_MINUTE)]


class Hours(OcpiModel):
    """Opening hours (identical in 2.3.0).

    "regular_hours ... needs to contain at least one RegularHours object" when
    ``twentyfourseven`` is false is not enforced: it is a cross-field consistency rule, and
    dead-lettering a whole Location for its opening hours loses more than it protects.
    """

    twentyfourseven: bool
    regular_hours: list[RegularHours] | None = None
    exceptional_openings: list[ExceptionalPeriod] | None = None
    exceptional_closings: list[ExceptionalPeriod] | None = None


class PublishTokenType(OcpiModel):
    """A token that may be shown an unpublished Location.

    The spec's SHALL rules (at least one of uid/visual_number/group_id; uid needs type;
    visual_number needs issuer) are the one Python validator in these models: they are
    cross-field rules pydantic-core cannot express, the object is rare (only in
    ``publish_allowed_to``), and an entry that breaks them widens who may see a private Location.
    """

    uid: Annotated[str, CiString(36)] | None = None
    type: TokenTypeField | None = None
    visual_number: Annotated[str, String(64)] | None = None
    issuer: Annotated[str, String(64)] | None = None
    group_id: Annotated[str, CiString(36)] | None = None

    @model_validator(mode="after")
    def _check_identifying_fields(self) -> Self:
        if self.uid is None and self.visual_number is None and self.group_id is None:
            raise ValueError("at least one of uid, visual_number or group_id SHALL be set")
        if self.uid is not None and self.type is None:
            raise ValueError("type SHALL be set when uid is set")
        if self.visual_number is not None and self.issuer is None:
            raise ValueError("issuer SHALL be set when visual_number is set")
        return self


class StatusSchedule(OcpiModel):
    """A planned status of an EVSE (identical in 2.3.0)."""

    period_begin: DateTime
    period_end: DateTime | None = None
    status: StatusField


class Connector(OcpiModel):
    """A socket or cable of an EVSE; ``id`` is unique only within its EVSE."""

    id: Annotated[str, CiString(36)]
    standard: ConnectorTypeField
    format: ConnectorFormatField
    power_type: PowerTypeField
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None
    tariff_ids: list[Annotated[str, CiString(36)]] | None = None
    terms_and_conditions: URL | None = None
    last_updated: DateTime


class EVSE(OcpiModel):
    """The part that controls the power supply to a single EV."""

    uid: Annotated[str, CiString(36)]
    evse_id: Annotated[str, CiString(48)] | None = None
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
    """A charging location (2.2.1). Identity: ``country_code``/``party_id``/``id``."""

    country_code: CountryCode
    party_id: PartyId
    id: ObjectId
    publish: bool
    publish_allowed_to: list[PublishTokenType] | None = None
    name: Annotated[str, String(255)] | None = None
    address: Annotated[str, String(45)]
    city: Annotated[str, String(45)]
    postal_code: Annotated[str, String(10)] | None = None
    state: Annotated[str, String(20)] | None = None
    country: Annotated[str, String(3)]
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    parking_type: ParkingTypeField | None = None
    evses: list[EVSE] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[FacilityField] | None = None
    time_zone: Annotated[str, String(255)]
    opening_times: Hours | None = None
    charging_when_closed: bool | None = None
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime
