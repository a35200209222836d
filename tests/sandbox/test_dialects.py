"""Dialects: timestamps with a space, fractions or no zone; lower-case values; explicit nulls."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sandbox.dialects import (
    DIALECTS,
    Dialect,
    DialectWriter,
    optional_fields,
    parse_dialects,
    rewrite_datetime,
)
from sandbox.generator import MODULES, VERSIONS, ObjectFactory, Party, format_datetime
from schemas.keys import PartnerIdentity, object_key
from schemas.ocpi import model_for, v2_1_1, v2_2_1, v2_3_0
from tests.sandbox.paging import walk_chain
from tests.support import auth_header, get, sandbox

SIZES = {"tokens": 40, "locations": 20, "tariffs": 20, "sessions": 20, "cdrs": 20}
ROLE = {"tokens": "emsp"}
SPACE_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00$")
SPEC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def list_path(module: str, version: str = "2.2.1", limit: int = 10) -> str:
    since = "date_from=2019-01-01T00:00:00Z"
    return f"/ocpi/{ROLE.get(module, 'cpo')}/{version}/{module}?{since}&limit={limit}"


def datetimes(value: Any, key: str = "") -> list[str]:
    """Every value of a DateTime field (by OCPI's naming) anywhere in an object."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(datetimes(v, k))
    elif isinstance(value, list):
        for item in value:
            found.extend(datetimes(item, key))
    elif isinstance(value, str) and (
        key == "last_updated" or key.endswith(("date_time", "datetime"))
    ):
        found.append(value)
    return found


@pytest.mark.parametrize(
    ("space", "no_zone", "digits", "expected"),
    [
        (False, False, 0, "2024-03-04T03:00:00Z"),
        (True, False, 0, "2024-03-04 03:00:00+00:00"),
        (False, True, 0, "2024-03-04T03:00:00"),
        (True, True, 0, "2024-03-04 03:00:00"),
        (False, False, 3, "2024-03-04T03:00:00.000Z"),
        (True, False, 9, "2024-03-04 03:00:00.000000000+00:00"),
        (False, True, 1, "2024-03-04T03:00:00.0"),
    ],
)
def test_rewrite_datetime(space: bool, no_zone: bool, digits: int, expected: str) -> None:
    written = rewrite_datetime(
        "2024-03-04T03:00:00Z", space=space, no_zone=no_zone, fraction_digits=digits
    )
    assert written == expected


@given(
    ms=st.integers(0, 4_102_444_800_000),
    space=st.booleans(),
    no_zone=st.booleans(),
    digits=st.sampled_from([0, 1, 2, 3, 6, 9]),
)
def test_every_dialect_keeps_the_instant(ms: int, space: bool, no_zone: bool, digits: int) -> None:
    spec = format_datetime(ms)
    written = rewrite_datetime(spec, space=space, no_zone=no_zone, fraction_digits=digits)
    parsed = datetime.fromisoformat(written)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # no designator means UTC in OCPI
    assert parsed == datetime.fromisoformat(spec)


def test_unknown_dialects_are_refused_and_the_order_is_fixed() -> None:
    assert parse_dialects(("nulls", "lowercase")) == ("lowercase", "nulls")
    with pytest.raises(ValueError, match="shouting"):
        parse_dialects(("shouting",))


MODELS = {
    ("2.1.1", "evse"): v2_1_1.EVSE,
    ("2.1.1", "connector"): v2_1_1.Connector,
    ("2.2.1", "evse"): v2_2_1.EVSE,
    ("2.2.1", "connector"): v2_2_1.Connector,
    ("2.3.0", "evse"): v2_3_0.EVSE,
    ("2.3.0", "connector"): v2_3_0.Connector,
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", [*MODULES, "evse", "connector"])
def test_nulls_cover_exactly_the_optional_fields_of_the_models(version: str, kind: str) -> None:
    model = MODELS[(version, kind)] if kind in ("evse", "connector") else model_for(version, kind)
    optional = {name for name, field in model.model_fields.items() if not field.is_required()}
    assert set(optional_fields(version, kind)) == optional


def error_types(version: str, module: str, obj: dict[str, Any]) -> set[str]:
    """The kinds of validation errors of an object against the project's model ({} if valid)."""
    try:
        model_for(version, module).model_validate(obj)
    except ValidationError as error:
        return {e["type"] for e in error.errors()}
    return set()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", MODULES)
def test_nulls_fill_every_optional_field_and_stay_valid(module: str, version: str) -> None:
    factory = ObjectFactory(module, 1, Party())
    writer = DialectWriter(("nulls",), module, version)
    for index in range(30):
        obj = writer.write(factory.render(index, version, 1_600_000_000_000), index)
        assert set(optional_fields(version, module)) <= set(obj)
        assert error_types(version, module, obj) == set()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", MODULES)
def test_lowercase_breaks_nothing_but_closed_enums(module: str, version: str) -> None:
    factory = ObjectFactory(module, 1, Party())
    writer = DialectWriter(("lowercase",), module, version)
    kinds: set[str] = set()
    for index in range(30):
        obj = writer.write(factory.render(index, version, 1_600_000_000_000), index)
        kinds |= error_types(version, module, obj)
    assert kinds <= {"literal_error"}  # lower-case values outside the closed enums' lists


def test_lowercase_touches_case_insensitive_values_only() -> None:
    factory = ObjectFactory("tokens", 1, Party())
    token = DialectWriter(("lowercase",), "tokens", "2.2.1").write(
        factory.render(3, "2.2.1", 1_600_000_000_000), 3
    )
    old_token = DialectWriter(("lowercase",), "tokens", "2.1.1").write(
        factory.render(3, "2.1.1", 1_600_000_000_000), 3
    )
    assert (token["country_code"], token["party_id"]) == ("nl", "sbx")
    assert token["uid"] == factory.token_uid(3).lower()
    assert token["type"] == "rfid"
    assert token["whitelist"] == token["whitelist"].lower()
    assert token["issuer"] == "Sandbox eMSP"  # a plain string keeps its case
    assert old_token["uid"] == factory.token_uid(3)  # 2.1.1 ids are case-sensitive
    assert old_token["type"] == "rfid"


async def test_space_timestamps_over_http_objects_and_envelope() -> None:
    async with sandbox(sizes=SIZES, dialects=("space-timestamps",)) as (base, _):
        _, body, _ = await get(f"{base}{list_path('locations', limit=20)}", auth_header())
    stamps = [s for obj in body["data"] for s in datetimes(obj)]
    assert len(stamps) > 100  # locations, their EVSEs and connectors
    assert all(SPACE_STAMP.match(s) for s in stamps)
    assert SPACE_STAMP.match(body["timestamp"])
    with pytest.raises(ValidationError):  # the models want the spec's own format
        model_for("2.2.1", "locations").model_validate(body["data"][0])


async def test_fractions_vary_in_length_and_keep_the_instants() -> None:
    async with sandbox(sizes=SIZES, dialects=("fractions",)) as (base, _):
        _, plain, _ = await get(f"{base}{list_path('sessions')}", auth_header())
    async with sandbox(sizes=SIZES) as (base, _):
        _, spec, _ = await get(f"{base}{list_path('sessions')}", auth_header())
    written = [s for obj in plain["data"] for s in datetimes(obj)]
    expected = [s for obj in spec["data"] for s in datetimes(obj)]
    lengths = {len(s.split(".")[1].rstrip("Z")) for s in written}
    assert len(lengths) >= 3
    instants = [datetime.fromisoformat(s) for s in written]
    assert instants == [datetime.fromisoformat(s) for s in expected]


async def test_no_zone_timestamps_have_no_designator() -> None:
    async with sandbox(sizes=SIZES, dialects=("no-zone",)) as (base, _):
        _, body, _ = await get(f"{base}{list_path('tokens')}", auth_header())
    assert all(
        re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$", o["last_updated"]) for o in body["data"]
    )


async def test_nulls_over_http() -> None:
    async with sandbox(sizes=SIZES, dialects=("nulls",)) as (base, _):
        _, body, _ = await get(f"{base}{list_path('tokens', limit=40)}", auth_header())
    assert any(o["group_id"] is None for o in body["data"])
    assert all("energy_contract" in o for o in body["data"])


@pytest.mark.parametrize("module", MODULES)
async def test_keys_from_lowercase_objects_match_the_truth_served_identity(module: str) -> None:
    partner = PartnerIdentity("NL", "SBX")
    async with sandbox(sizes=SIZES, dialects=("lowercase",)) as (base, state):
        objects, _ = await walk_chain(base, list_path(module, "2.3.0"), "2.3.0")
        _, ndjson, _ = await get(f"{base}/_sandbox/truth?module={module}&version=2.3.0")
    records = [orjson.loads(line) for line in ndjson.splitlines()]
    served = {object_key(module, "2.3.0", obj, partner) for obj in objects}
    from_truth = {
        object_key(module, "2.3.0", {**r["served"], "uid": r["served"]["id"]}, partner)
        for r in records
    }
    canonical = {object_key(module, "2.3.0", {**r, "uid": r["id"]}, partner) for r in records}
    assert served == from_truth
    # CiString key parts are normalised and a listed token type in other case is read as listed
    # (2.3.0's TokenType is open, so validation leaves `rfid` alone: the key does not): the
    # objects as served key exactly like the canonical ones.
    assert served == canonical
    assert state.config.dialects == ("lowercase",)


@pytest.mark.parametrize("version", VERSIONS)
async def test_all_dialects_at_once_keep_every_object(version: str) -> None:
    every: tuple[Dialect, ...] = DIALECTS
    async with sandbox(sizes=SIZES, dialects=every) as (base, _):
        spoken, _ = await walk_chain(base, list_path("locations", version), version)
    async with sandbox(sizes=SIZES) as (base, _):
        spec, _ = await walk_chain(base, list_path("locations", version), version)
    assert len(spoken) == len(spec) == SIZES["locations"]
    assert [o["id"].upper() for o in spoken] == [o["id"].upper() for o in spec]
    assert all(SPEC_STAMP.match(o["last_updated"]) is None for o in spoken)
