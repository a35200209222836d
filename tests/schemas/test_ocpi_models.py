"""Tests for the OCPI models in ``schemas/ocpi``: the spec examples, targeted invalid variants,
lossless round trips, enum openness, DateTime rules and generated (hypothesis) objects."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas.ocpi import MODULES, VERSIONS, OcpiModel, model_for, v2_1_1, v2_2_1, v2_3_0
from schemas.ocpi.base import PRINTABLE_ASCII
from schemas.validation import PageValidator, format_error

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ocpi"
VERSION_MODULES = {"2.1.1": v2_1_1, "2.2.1": v2_2_1, "2.3.0": v2_3_0}
PREFIX_MODULE = {"token": "tokens", "location": "locations", "tariff": "tariffs"}
PREFIX_MODULE |= {"session": "sessions", "cdr": "cdrs", "tariffrestriction": "tariffs"}


def errors_of(model: type[BaseModel], payload: Any) -> list[str]:
    """Validate JSON ``payload`` and return the formatted errors (``[]`` if valid)."""
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    try:
        model.model_validate_json(raw)
    except ValidationError as exc:
        return [format_error(e) for e in exc.errors()]
    return []


# --- Spec examples --------------------------------------------------------------------------


def example_cases() -> Iterator[Any]:
    """Every example file as (version, file, model, objects to validate with that model)."""
    for version in VERSIONS:
        for path in sorted((FIXTURES / version).glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            models = VERSION_MODULES[version]
            name = path.name
            if name.startswith("location_energymix"):
                case = (models.EnergyMix, [data["energy_mix"]])
            elif name.startswith("location_regularhours"):
                case = (models.Hours, [data["opening_times"]])
            elif name.startswith("location_hours"):
                case = (models.Hours, [data])
            elif name.startswith("transport_and_format_get_token_list"):
                case = (model_for(version, "tokens"), data["data"])
            else:
                case = (model_for(version, PREFIX_MODULE[name.split("_")[0]]), [data])
            yield pytest.param(version, name, *case, id=f"{version}/{name}")


EXAMPLES = list(example_cases())


def test_every_version_has_examples_of_every_module() -> None:
    for version in VERSIONS:
        names = [p.name for p in (FIXTURES / version).glob("*.json")]
        for prefix in ("token_", "location_example", "tariff_", "session_", "cdr_"):
            assert any(n.startswith(prefix) for n in names), (version, prefix)


@pytest.mark.parametrize(("version", "name", "model", "objects"), EXAMPLES)
def test_spec_example_validates(
    version: str, name: str, model: type[BaseModel], objects: list[Any]
) -> None:
    for obj in objects:
        assert errors_of(model, obj) == [], name


def undeclared_fields(node: Any, path: str = "") -> Iterator[str]:
    """Paths of the fields of a validated tree that only ``extra="allow"`` let in."""
    if isinstance(node, BaseModel):
        for name in node.model_extra or {}:
            yield f"{path}.{name}"
        for name in type(node).model_fields:
            yield from undeclared_fields(getattr(node, name), f"{path}.{name}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from undeclared_fields(item, f"{path}[{index}]")


@pytest.mark.parametrize(("version", "name", "model", "objects"), EXAMPLES)
def test_spec_example_fields_are_all_declared(
    version: str, name: str, model: type[BaseModel], objects: list[Any]
) -> None:
    """Unknown fields are kept, so a field the model lacks would pass unnoticed: the spec's own
    examples must use declared fields only (2.3.0's included)."""
    for obj in objects:
        assert list(undeclared_fields(model.model_validate_json(orjson.dumps(obj)))) == [], name


@pytest.mark.parametrize(("version", "name", "model", "objects"), EXAMPLES)
def test_round_trip_is_lossless_with_extra_fields(
    version: str, name: str, model: type[BaseModel], objects: list[Any]
) -> None:
    for original in objects:
        obj = copy.deepcopy(original)
        obj["x_partner_extension"] = {"nested": [1, "two", None], "flag": True}
        for value in obj.values():  # also an extra field inside a nested object
            if isinstance(value, dict):
                value["x_nested_extension"] = "kept"
                break
        first = model.model_validate_json(orjson.dumps(obj))
        dumped = first.model_dump_json(exclude_unset=True)
        assert json.loads(dumped) == obj  # same keys and values (2.00 == 2.0)
        assert model.model_validate_json(dumped) == first


def test_2_1_1_cdr_example_as_printed_reports_each_misprint() -> None:
    raw = (FIXTURES / "2.1.1" / "invalid" / "cdr_example_as_printed.json").read_bytes()
    assert sorted(errors_of(v2_1_1.Cdr, raw)) == sorted(
        [
            "location.type: Input should be 'ON_STREET', 'PARKING_GARAGE', 'UNDERGROUND_GARAGE', "
            "'PARKING_LOT', 'OTHER' or 'UNKNOWN'",
            "location.coordinates.latitude: String should match pattern "
            f"'{v2_1_1.GeoLocation.model_fields['latitude'].metadata[0].pattern}'",
            "location.coordinates.longitude: String should match pattern "
            f"'{v2_1_1.GeoLocation.model_fields['longitude'].metadata[0].pattern}'",
            "location.evses[0].status: Field required",
            "tariffs[0].elements[0].price_components[0].price: Input should be a valid number",
            "tariffs[0].last_updated: Field required",
        ]
    )


# --- Targeted invalid variants ------------------------------------------------------------


def load(version: str, name: str) -> Any:
    return json.loads((FIXTURES / version / name).read_text(encoding="utf-8"))


def mutate(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Copy ``obj`` with the value at ``path`` replaced (``DELETE`` removes the key)."""
    result = copy.deepcopy(obj)
    target = result
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


DELETE = object()
BASE = {
    ("2.1.1", "tokens"): "token_example.json",
    ("2.1.1", "locations"): "location_example.json",
    ("2.1.1", "cdrs"): "cdr_example.json",
    ("2.2.1", "tokens"): "token_example_2_full_rfid.json",
    ("2.2.1", "locations"): "location_example.json",
    ("2.2.1", "tariffs"): "tariff_4_complex.json",
    ("2.2.1", "sessions"): "session_example_2_short_finished.json",
    ("2.2.1", "cdrs"): "cdr_example.json",
    ("2.3.0", "tokens"): "token_example_2_full_rfid.json",
    ("2.3.0", "locations"): "location_example.json",
    ("2.3.0", "tariffs"): "tariff_4_complex.json",
    ("2.3.0", "cdrs"): "cdr_example.json",
}
CONNECTOR_FORMAT = "Input should be 'SOCKET' or 'CABLE'"
INVALID_VARIANTS = [
    # missing required field
    ("2.1.1", "tokens", ("auth_id",), DELETE, "auth_id: Field required"),
    ("2.2.1", "tokens", ("contract_id",), DELETE, "contract_id: Field required"),
    ("2.2.1", "locations", ("publish",), DELETE, "publish: Field required"),
    ("2.2.1", "locations", ("time_zone",), DELETE, "time_zone: Field required"),
    ("2.3.0", "tariffs", ("tax_included",), DELETE, "tax_included: Field required"),
    ("2.2.1", "locations", ("evses", 0, "connectors"), [], "evses[0].connectors: List should"),
    (
        "2.2.1",
        "cdrs",
        ("charging_periods", 0, "dimensions", 0, "volume"),
        DELETE,
        "charging_periods[0].dimensions[0].volume: Field required",
    ),
    # bad enum value (closed enums)
    (
        "2.2.1",
        "locations",
        ("evses", 0, "connectors", 1, "format"),
        "PLUG",
        f"evses[0].connectors[1].format: {CONNECTOR_FORMAT}",
    ),
    ("2.2.1", "locations", ("evses", 1, "status"), "BROKEN", "evses[1].status: Input should be"),
    ("2.2.1", "tokens", ("whitelist",), "SOMETIMES", "whitelist: Input should be 'ALWAYS'"),
    ("2.2.1", "tokens", ("type",), "rfid", "type: Input should be 'AD_HOC_USER'"),
    ("2.1.1", "cdrs", ("auth_method",), "MAGIC", "auth_method: Input should be"),
    ("2.3.0", "tariffs", ("tax_included",), "MAYBE", "tax_included: Input should be 'YES'"),
    # too-long strings
    ("2.2.1", "tokens", ("uid",), "X" * 37, "uid: String should have at most 36 characters"),
    ("2.2.1", "tokens", ("country_code",), "NLD", "country_code: String should have at most 2"),
    ("2.1.1", "locations", ("id",), "L" * 40, "id: String should have at most 39 characters"),
    ("2.2.1", "locations", ("address",), "A" * 46, "address: String should have at most 45"),
    ("2.3.0", "locations", ("address",), "A" * 256, "address: String should have at most 255"),
    # CiString must be printable ASCII
    ("2.2.1", "tokens", ("uid",), "Ü1234", "uid: String should match pattern"),
    ("2.2.1", "tokens", ("party_id",), "T\tM", "party_id: String should match pattern"),
    (
        "2.3.0",
        "locations",
        ("parking_places", 0, "apds_reference"),
        "Gare-Süd",
        "parking_places[0].apds_reference: String should match pattern",
    ),
    # bad dates and wrong types
    ("2.2.1", "tokens", ("last_updated",), "2019-02-29T10:00:00Z", "last_updated: String should"),
    ("2.2.1", "tokens", ("last_updated",), "2018-12-10 17:25:10Z", "last_updated: String should"),
    (
        "2.2.1",
        "tokens",
        ("last_updated",),
        "2018-12-10T17:25:10+00:00",
        "last_updated: String should match pattern",
    ),
    ("2.2.1", "tokens", ("last_updated",), 1544462710, "last_updated: Input should be a valid str"),
    ("2.1.1", "tokens", ("last_updated",), 1435617549.0, "last_updated: Input should be a valid"),
    ("2.2.1", "tokens", ("valid",), "true", "valid: Input should be a valid boolean"),
    ("2.2.1", "tokens", ("valid",), 1, "valid: Input should be a valid boolean"),
    ("2.2.1", "tokens", ("uid",), 12345678, "uid: Input should be a valid string"),
    (
        "2.2.1",
        "locations",
        ("evses", 0, "connectors", 0, "max_voltage"),
        "220",
        "evses[0].connectors[0].max_voltage: Input should be a valid integer",
    ),
    (
        "2.2.1",
        "locations",
        ("evses", 0, "connectors", 0, "max_voltage"),
        220.5,
        "evses[0].connectors[0].max_voltage: Input should be a valid integer",
    ),
    ("2.2.1", "sessions", ("kwh",), "41.12", "kwh: Input should be a valid number"),
    ("2.2.1", "locations", ("coordinates",), "51.0,3.7", "coordinates: Input should be an object"),
    ("2.2.1", "locations", ("coordinates", "latitude"), "51.04", "coordinates.latitude: String"),
    (
        "2.2.1",
        "tariffs",
        ("elements", 3, "restrictions", "day_of_week"),
        "SATURDAY",
        "elements[3].restrictions.day_of_week: Input should be a valid array",
    ),
    ("2.3.0", "cdrs", ("total_cost",), {"excl_vat": 4.0}, "total_cost.before_taxes: Field"),
]


@pytest.mark.parametrize(("version", "module", "path", "value", "expected"), INVALID_VARIANTS)
def test_invalid_variant_fails_with_path(
    version: str, module: str, path: tuple[Any, ...], value: Any, expected: str
) -> None:
    obj = mutate(load(version, BASE[(version, module)]), path, value)
    errors = errors_of(model_for(version, module), obj)
    assert any(e.startswith(expected) for e in errors), errors


# --- Version specifics --------------------------------------------------------------------


def test_models_per_version_and_module() -> None:
    assert MODULES == ("tokens", "locations", "tariffs", "sessions", "cdrs")
    assert VERSIONS == ("2.1.1", "2.2.1", "2.3.0")
    assert model_for("2.1.1", "tokens") is v2_1_1.Token
    assert model_for("2.2.1", "cdrs") is v2_2_1.Cdr
    assert model_for("2.3.0", "locations") is v2_3_0.Location
    for version in VERSIONS:
        for module in MODULES:
            assert issubclass(model_for(version, module), OcpiModel)
    with pytest.raises(ValueError, match=r"version '2\.2'"):
        model_for("2.2", "tokens")
    with pytest.raises(ValueError, match="commands"):
        model_for("2.2.1", "commands")


def test_token_field_names_follow_each_version() -> None:
    assert "auth_id" in v2_1_1.Token.model_fields
    assert "country_code" not in v2_1_1.Token.model_fields
    assert "contract_id" in v2_2_1.Token.model_fields
    assert "auth_id" not in v2_2_1.Token.model_fields
    assert "tariff_id" in v2_1_1.Connector.model_fields
    assert "tariff_ids" in v2_2_1.Connector.model_fields
    assert "voltage" in v2_1_1.Connector.model_fields
    assert "max_voltage" in v2_2_1.Connector.model_fields
    assert "start_datetime" in v2_1_1.Session.model_fields
    assert "stop_date_time" in v2_1_1.Cdr.model_fields
    assert "capabilities" in v2_3_0.Connector.model_fields


@pytest.mark.parametrize(
    ("version", "required", "optional"),
    [
        ("2.1.1", {"type", "postal_code"}, {"time_zone", "energy_mix"}),
        ("2.2.1", {"publish", "time_zone"}, {"postal_code", "energy_mix", "parking_type"}),
        ("2.3.0", {"publish", "time_zone"}, {"postal_code", "energy_mix", "help_phone"}),
    ],
)
def test_location_requirements_per_version(
    version: str, required: set[str], optional: set[str]
) -> None:
    fields = model_for(version, "locations").model_fields
    assert {name for name in required if fields[name].is_required()} == required
    assert {name for name in optional if not fields[name].is_required()} == optional
    assert ("publish" in fields) == (version != "2.1.1")


def test_environmental_impact_category_field_was_renamed_in_2_2() -> None:
    impact_211 = {"source": "NUCLEAR_WASTE", "amount": 0.1}
    impact_221 = {"category": "NUCLEAR_WASTE", "amount": 0.1}
    assert errors_of(v2_1_1.EnvironmentalImpact, impact_211) == []
    assert errors_of(v2_2_1.EnvironmentalImpact, impact_221) == []
    assert errors_of(v2_2_1.EnvironmentalImpact, impact_211) == ["category: Field required"]


def test_price_changed_shape_in_2_3_0() -> None:
    assert errors_of(v2_2_1.Price, {"excl_vat": 1.5, "incl_vat": 1.8}) == []
    assert (
        errors_of(v2_3_0.Price, {"before_taxes": 1.5, "taxes": [{"name": "VAT", "amount": 0.3}]})
        == []
    )
    assert errors_of(v2_3_0.Price, {"excl_vat": 1.5}) == ["before_taxes: Field required"]


def test_2_2_1_cdr_token_may_omit_owner_but_2_3_0_may_not() -> None:
    token = {"uid": "012345678", "type": "RFID", "contract_id": "DE8ACC12E46L89"}
    assert errors_of(v2_2_1.CdrToken, token) == []
    assert sorted(errors_of(v2_3_0.CdrToken, token)) == [
        "country_code: Field required",
        "party_id: Field required",
    ]


def test_2_3_0_evse_parking_accepts_ids_and_objects() -> None:
    location = load("2.3.0", "location_example.json")
    assert location["evses"][0]["parking"] == ["1", "2"]
    as_objects = mutate(
        location, ("evses", 0, "parking"), [{"parking_id": "1", "evse_position": "LEFT"}]
    )
    assert errors_of(v2_3_0.Location, as_objects) == []
    bad = mutate(location, ("evses", 0, "parking"), [{"parking_id": "1", "evse_position": "UP"}])
    assert errors_of(v2_3_0.Location, bad) == [
        "evses[0].parking[0].evse_position: Input should be 'LEFT', 'RIGHT' or 'CENTER'"
    ]
    assert errors_of(v2_3_0.Location, mutate(location, ("evses", 0, "parking"), [7])) != []


def test_2_3_0_cdr_tariff_snapshot_may_lack_tax_included() -> None:
    cdr = load("2.3.0", "cdr_example.json")
    assert "tax_included" not in cdr["tariffs"][0]
    assert errors_of(v2_3_0.Cdr, cdr) == []
    assert errors_of(v2_3_0.Tariff, cdr["tariffs"][0]) == ["tax_included: Field required"]


# --- Open and closed enums ----------------------------------------------------------------

OPEN_ENUM_SITES = [
    # 2.3.0 declares these OpenEnums: every place they occur accepts an unknown value.
    ("2.3.0", "tokens", "token_example_2_full_rfid.json", ("type",)),
    ("2.3.0", "sessions", "session_example_2_short_finished.json", ("cdr_token", "type")),
    ("2.3.0", "cdrs", "cdr_example.json", ("cdr_token", "type")),
    ("2.3.0", "cdrs", "cdr_example.json", ("cdr_location", "connector_standard")),
    ("2.3.0", "locations", "location_example.json", ("evses", 0, "connectors", 0, "standard")),
    ("2.3.0", "locations", "location_example.json", ("evses", 0, "capabilities", 0)),
    ("2.3.0", "locations", "location_example.json", ("parking_type",)),
    (
        "2.3.0",
        "locations",
        "location_example_uc4_limited_visibility.json",
        ("publish_allowed_to", 2, "type"),
    ),
    ("2.3.0", "locations", "location_example.json", ("parking_places", 0, "vehicle_types", 0)),
    # Open in every version (see schemas/NOTES.md): plug standards and feature tags.
    ("2.2.1", "locations", "location_example.json", ("evses", 0, "connectors", 0, "standard")),
    ("2.2.1", "cdrs", "cdr_example.json", ("cdr_location", "connector_standard")),
    ("2.2.1", "locations", "location_example.json", ("evses", 0, "capabilities", 0)),
    ("2.1.1", "locations", "location_example.json", ("evses", 0, "connectors", 0, "standard")),
    ("2.1.1", "locations", "location_example.json", ("evses", 0, "capabilities", 0)),
]


@pytest.mark.parametrize(("version", "module", "name", "path"), OPEN_ENUM_SITES)
def test_open_enum_accepts_unknown_value(
    version: str, module: str, name: str, path: tuple[Any, ...]
) -> None:
    obj = mutate(load(version, name), path, "SOME_FUTURE_VALUE")
    model = model_for(version, module)
    assert errors_of(model, obj) == []
    assert errors_of(model, mutate(obj, path, "")) != []  # open, but not empty


def test_2_3_0_open_enums_inside_nested_objects() -> None:
    image = {"url": "https://x.example/a.png", "category": "DRONE_SHOT", "type": "png"}
    location = load("2.3.0", "location_example.json")
    for path in (("images",), ("evses", 0, "images"), ("parking_places", 0, "images")):
        assert errors_of(v2_3_0.Location, mutate(location, path, [image])) == []
    location["operator"]["logo"] = image
    location["energy_mix"] = {
        "is_green_energy": False,
        "environ_impact": [{"category": "METHANE", "amount": 1.0}],
    }
    location["facilities"] = ["SKI_LIFT"]
    location["evses"][0]["parking_restrictions"] = ["TAXIS", "ROBOTS"]
    assert errors_of(v2_3_0.Location, location) == []
    tariff = load("2.3.0", "tariff_4_complex.json")
    tariff["energy_mix"] = location["energy_mix"]
    assert errors_of(v2_3_0.Tariff, tariff) == []
    assert errors_of(v2_2_1.Image, image) != []  # closed in 2.2.1


@pytest.mark.parametrize(
    ("version", "module", "name", "path", "later_value"),
    [
        ("2.2.1", "tokens", "token_example_2_full_rfid.json", ("type",), "EMAID"),
        ("2.1.1", "tokens", "token_example.json", ("type",), "APP_USER"),
        ("2.1.1", "cdrs", "cdr_example.json", ("auth_method",), "COMMAND"),
        (
            "2.1.1",
            "locations",
            "location_example.json",
            ("evses", 0, "connectors", 0, "power_type"),
            "AC_2_PHASE",
        ),
        ("2.1.1", "sessions", "session_example_1_simple_start.json", ("status",), "RESERVATION"),
    ],
)
def test_closed_enum_accepts_later_versions_values_but_not_typos(
    version: str, module: str, name: str, path: tuple[Any, ...], later_value: str
) -> None:
    obj = load(version, name)
    model = model_for(version, module)
    assert errors_of(model, mutate(obj, path, later_value)) == []
    assert errors_of(model, mutate(obj, path, later_value.lower())) != []


# --- DateTime, #NA and other field rules --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ok_2_2_1", "ok_2_1_1"),
    [
        ("2015-06-29T20:39:09Z", True, True),
        ("2015-06-29T20:39:09", True, True),
        ("2016-12-29T17:45:09.2Z", True, True),
        ("2018-01-01T01:08:01.123", True, True),
        ("2024-02-29T00:00:00Z", True, True),
        ("2000-02-29T00:00:00Z", True, True),
        ("2024-01-01T00:00:00.123456789Z", True, True),
        ("2015-06-29T22:39:09+02:00", False, True),
        ("2015-06-29T22:39:09+00:00", False, True),
        ("2023-02-29T00:00:00Z", False, False),
        ("1900-02-29T00:00:00Z", False, False),
        ("2015-04-31T00:00:00Z", False, False),
        ("2015-06-29T24:00:00Z", False, False),
        ("2015-06-29 20:39:09Z", False, False),
        ("2015-06-29", False, False),
        ("2015-06-29T20:39Z", False, False),
        ("20150629T203909Z", False, False),
        ("2015-06-29t20:39:09z", False, False),
        ("1970-1-1T00:00:00Z", False, False),
        ("２０１５-06-29T20:39:09Z", False, False),
        ("", False, False),
    ],
)
def test_datetime_format(text: str, ok_2_2_1: bool, ok_2_1_1: bool) -> None:
    period = {"period_begin": text, "period_end": "2015-06-29T20:39:09Z"}
    assert (errors_of(v2_2_1.ExceptionalPeriod, period) == []) is ok_2_2_1
    assert (errors_of(v2_3_0.ExceptionalPeriod, period) == []) is ok_2_2_1
    assert (errors_of(v2_1_1.ExceptionalPeriod, period) == []) is ok_2_1_1


def test_datetime_keeps_the_partners_text() -> None:
    period = v2_2_1.ExceptionalPeriod.model_validate_json(
        b'{"period_begin": "2016-12-29T17:45:09.2Z", "period_end": "2016-12-29T18:00:00"}'
    )
    assert period.period_begin == "2016-12-29T17:45:09.2Z"
    assert period.period_end == "2016-12-29T18:00:00"


def test_numbers_accept_integers_but_not_nan() -> None:
    assert errors_of(v2_2_1.Price, {"excl_vat": 4}) == []
    assert errors_of(v2_2_1.Price, b'{"excl_vat": NaN}') != []
    assert errors_of(v2_2_1.Price, b'{"excl_vat": Infinity}') != []


def test_not_available_marker_in_required_strings() -> None:
    session = load("2.2.1", "session_example_1_simple_start.json")
    session["evse_uid"] = session["connector_id"] = "#NA"
    assert errors_of(v2_2_1.Session, session) == []
    cdr = load("2.3.0", "cdr_example.json")
    for field in ("evse_uid", "evse_id", "connector_id"):
        cdr["cdr_location"][field] = "#NA"
    cdr["cdr_location"]["address"] = "#NA"
    assert errors_of(v2_3_0.Cdr, cdr) == []
    token = load("2.3.0", "token_example_2_full_rfid.json")
    token["issuer"] = "#NA"
    assert errors_of(v2_3_0.Token, token) == []


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"visual_number": "12345-67", "issuer": "NewMotion"}, None),
        ({"uid": "12345678905880", "type": "RFID"}, None),
        ({"group_id": "G1"}, None),
        ({"issuer": "NewMotion"}, "at least one of uid, visual_number or group_id SHALL be set"),
        ({"uid": "12345678905880"}, "type SHALL be set when uid is set"),
        ({"visual_number": "12345-67"}, "issuer SHALL be set when visual_number is set"),
    ],
)
def test_publish_token_type_rules(entry: dict[str, str], expected: str | None) -> None:
    location = mutate(load("2.2.1", "location_example.json"), ("publish_allowed_to",), [entry])
    errors = errors_of(v2_2_1.Location, location)
    if expected is None:
        assert errors == []
    else:
        assert errors == [f"publish_allowed_to[0]: Value error, {expected}"]


# --- Generated objects (hypothesis), driven by the exported JSON Schema --------------------


def strategy_from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Objects valid against one of our JSON Schemas (the subset pydantic emits for them)."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        target = st.deferred(lambda: strategy_from_schema(defs[name], defs))
        # The one rule a JSON Schema cannot carry: PublishTokenType's SHALL combinations.
        return target.map(complete_publish_token) if name == "PublishTokenType" else target
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([strategy_from_schema(s, defs) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fields = {k: strategy_from_schema(v, defs) for k, v in properties.items()}
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(strategy_from_schema(schema["items"], defs), min_size=low, max_size=low + 2)
    if kind == "string":
        return string_strategy(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if not schema:  # unconstrained (e.g. an extra-free "str" without type)
        return st.text(max_size=10)
    raise AssertionError(f"schema not covered by the test strategy: {schema}")


def complete_publish_token(token: dict[str, Any]) -> dict[str, Any]:
    """Make a generated PublishTokenType satisfy its cross-field SHALL rules."""

    def is_set(key: str) -> bool:
        return token.get(key) is not None

    if not any(is_set(key) for key in ("uid", "visual_number", "group_id")):
        token["group_id"] = "GROUP-1"
    if is_set("uid") and not is_set("type"):
        token["type"] = "RFID"
    if is_set("visual_number") and not is_set("issuer"):
        token["issuer"] = "Issuer"
    return token


def string_strategy(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 40)
    pattern = schema.get("pattern")
    if "examples" in schema:  # an open enum: known values and anything else
        return st.sampled_from(schema["examples"]) | st.text(min_size=max(low, 1), max_size=high)
    if pattern == PRINTABLE_ASCII:
        ascii_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
        return st.text(ascii_printable, min_size=low, max_size=high)
    if pattern is not None:
        return st.from_regex(pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)
    return st.text(min_size=low, max_size=high)


@functools.cache
def schema_of(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema()
    return schema, schema.get("$defs", {})


@functools.cache
def objects_of(version: str, module: str) -> st.SearchStrategy[Any]:
    schema, defs = schema_of(model_for(version, module))
    return strategy_from_schema(schema, defs)


def required_paths(
    value: Any, schema: dict[str, Any], defs: dict[str, Any], path: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """Paths of every required key present in ``value`` (which matches ``schema``)."""
    if "$ref" in schema:
        yield from required_paths(value, defs[schema["$ref"].split("/")[-1]], defs, path)
    elif "anyOf" in schema or "oneOf" in schema:
        options: list[dict[str, Any]] = schema.get("anyOf") or schema["oneOf"]
        for option in options:
            resolved = defs[option["$ref"].split("/")[-1]] if "$ref" in option else option
            # Follow the alternative whose JSON type matches the value (object, array, other).
            is_object, is_array = resolved.get("type") == "object", resolved.get("type") == "array"
            if is_object == isinstance(value, dict) and is_array == isinstance(value, list):
                yield from required_paths(value, option, defs, path)
                return
    elif isinstance(value, dict):
        for key in schema.get("required", ()):
            yield (*path, key)
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                yield from required_paths(sub, schema["properties"][key], defs, (*path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from required_paths(item, schema["items"], defs, (*path, index))


def path_text(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


MODELS = [(version, module) for version in VERSIONS for module in MODULES]
GENERATED = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize(("version", "module"), MODELS)
@GENERATED
@given(data=st.data())
def test_generated_objects_validate(version: str, module: str, data: st.DataObject) -> None:
    objects = data.draw(st.lists(objects_of(version, module), min_size=1, max_size=3))
    page = [orjson.dumps(obj) for obj in objects]
    assert PageValidator(version, module).validate(page) == []
    model = model_for(version, module)
    for obj, raw in zip(objects, page, strict=True):
        parsed = model.model_validate_json(raw)
        assert json.loads(parsed.model_dump_json(exclude_unset=True)) == obj


@pytest.mark.parametrize(("version", "module"), MODELS)
@GENERATED
@given(data=st.data())
def test_generated_object_without_a_required_field_fails(
    version: str, module: str, data: st.DataObject
) -> None:
    model = model_for(version, module)
    schema, defs = schema_of(model)
    obj = data.draw(objects_of(version, module))
    path = data.draw(st.sampled_from(list(required_paths(obj, schema, defs))))
    errors = errors_of(model, mutate(obj, path, DELETE))
    assert f"{path_text(path)}: Field required" in errors


WRONG_TYPE = {str: 12345, int: "12", float: "1.5", bool: "true", dict: [], list: {}}


@pytest.mark.parametrize(("version", "module"), MODELS)
@GENERATED
@given(data=st.data())
def test_generated_object_with_a_wrong_type_fails(
    version: str, module: str, data: st.DataObject
) -> None:
    model = model_for(version, module)
    schema, defs = schema_of(model)
    obj = data.draw(objects_of(version, module))
    path = data.draw(st.sampled_from(list(required_paths(obj, schema, defs))))
    current = obj
    for step in path:
        current = current[step]
    errors = errors_of(model, mutate(obj, path, WRONG_TYPE[type(current)]))
    assert any(e.startswith(path_text(path)) for e in errors), errors
