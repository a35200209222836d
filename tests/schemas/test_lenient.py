"""Tests for lenient validation (``schemas.lenient`` behind ``PageValidator(..., "lenient")``).

Lenient keeps every object strict keeps, reads the dialects partners speak, and dead-letters an
object only when it is unusable: a required field missing, a JSON type that cannot be read as
the field's type, a closed-enum value not in the version's list, or (in the puller) no key.
"""

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

from schemas.datetimes import parse_datetime
from schemas.dialects import DESCRIPTIONS, Dialect
from schemas.lenient import Rewrite, rewritten
from schemas.ocpi import MODULES, VERSIONS, model_for
from schemas.validation import InvalidObject, PageReport, PageValidator

from .test_validation import _mutated_pages

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ocpi"
SPACE = Dialect.SPACE_SEPARATOR
LOWER = Dialect.LOWERCASE_DESIGNATOR
OFFSET = Dialect.NUMERIC_OFFSET
COMPACT = Dialect.COMPACT_OFFSET
LONG = Dialect.LONG_FRACTION
CASE = Dialect.ENUM_CASE
OUT = Dialect.OUT_OF_SPEC
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
    ("2.3.0", "sessions"): "session_example_2_short_finished.json",
    ("2.3.0", "cdrs"): "cdr_example.json",
}


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


# fmt: off
KEPT = [
    # (version, module, path, value sent, dialects, value our logic reads); paths as printed.
    ("2.2.1", "tokens", "last_updated", "2018-12-10 17:25:10+00:00", {SPACE, OFFSET},
     "2018-12-10T17:25:10Z"),
    ("2.2.1", "tokens", "last_updated", "2018-12-10T18:25:10+01:00", {OFFSET},
     "2018-12-10T17:25:10Z"),
    ("2.2.1", "tokens", "last_updated", "2018-12-10T18:25:10+0100", {COMPACT},
     "2018-12-10T17:25:10Z"),
    ("2.2.1", "tokens", "last_updated", "2018-12-10 17:25:10+00", {SPACE, COMPACT},
     "2018-12-10T17:25:10Z"),
    ("2.2.1", "tokens", "last_updated", "2018-12-10t17:25:10z", {LOWER}, "2018-12-10T17:25:10Z"),
    ("2.2.1", "tokens", "last_updated", "2018-12-10 17:25:10", {SPACE}, "2018-12-10T17:25:10Z"),
    ("2.3.0", "tokens", "last_updated", "2018-12-10T17:25:10.1234567891Z", {LONG},
     "2018-12-10T17:25:10.123456Z"),
    # 2.1.1 allows ±HH:MM itself (ISO 8601): only what it does not allow is a dialect.
    ("2.1.1", "tokens", "last_updated", "2015-06-29 22:39:09+02:00", {SPACE},
     "2015-06-29T20:39:09Z"),
    ("2.1.1", "tokens", "last_updated", "2015-06-29T22:39:09+0200", {COMPACT},
     "2015-06-29T20:39:09Z"),
    # Nested timestamps, inside lists.
    ("2.2.1", "locations", "evses[0].connectors[1].last_updated", "2015-03-18 08:12:01",
     {SPACE}, "2015-03-18T08:12:01Z"),
    ("2.3.0", "sessions", "charging_periods[0].start_date_time", "2015-06-29 21:39:09+00:00",
     {SPACE, OFFSET}, "2015-06-29T21:39:09Z"),
    ("2.3.0", "cdrs", "tariffs[0].last_updated", "2015-02-02 14:15:01Z", {SPACE},
     "2015-02-02T14:15:01Z"),
    # Closed enums in other letter case (OCPI enums are case-sensitive: a dialect).
    ("2.2.1", "tokens", "type", "rfid", {CASE}, "RFID"),
    ("2.2.1", "tokens", "whitelist", "Allowed", {CASE}, "ALLOWED"),
    ("2.1.1", "cdrs", "auth_method", "whitelist", {CASE}, "WHITELIST"),
    ("2.2.1", "locations", "evses[1].status", "reserved", {CASE}, "RESERVED"),
    ("2.2.1", "tariffs", "elements[0].price_components[0].type", "time", {CASE}, "TIME"),
    ("2.2.1", "tariffs", "elements[2].restrictions.day_of_week[1]", "sunday", {CASE}, "SUNDAY"),
    ("2.3.0", "tariffs", "tax_included", "n/a", {CASE}, "N/A"),
    # Inside a union (a Parking reference is an id or an EVSEParking object).
    ("2.3.0", "locations", "evses[0].parking[0]", {"parking_id": "1", "evse_position": "left"},
     {CASE}, {"parking_id": "1", "evse_position": "LEFT"}),
    # Right JSON type, out of the spec's constraints: usable, reported.
    ("2.2.1", "tokens", "uid", "X" * 37, {OUT}, None),
    ("2.2.1", "tokens", "contract_id", "SECRET-CONTRACT-ID-0123456789-ABCDEFG", {OUT}, None),
    ("2.2.1", "tokens", "uid", "Ü1234", {OUT}, None),
    ("2.1.1", "locations", "coordinates.latitude", "51.04759", {OUT}, None),
    ("2.2.1", "locations", "evses[0].floor_level", "-1000", {OUT}, None),
    ("2.2.1", "locations", "opening_times",
     {"twentyfourseven": True,
      "regular_hours": [{"weekday": 8, "period_begin": "08:00", "period_end": "24:00"}]},
     {OUT}, None),
    ("2.2.1", "locations", "publish_allowed_to", [{"issuer": "x"}], {OUT}, None),
]
KEPT_AS_IS = [
    # What the spec itself allows is not a dialect, in either mode.
    ("2.2.1", "tokens", "last_updated", "2018-12-10T17:25:10"),
    ("2.2.1", "tokens", "last_updated", "2018-12-10T17:25:10.123456789Z"),
    ("2.1.1", "tokens", "last_updated", "2015-06-29T22:39:09+02:00"),
    ("2.2.1", "tokens", "country_code", "nl"),
    ("2.2.1", "tokens", "party_id", "tnm"),
    ("2.2.1", "tokens", "uid", "abc123"),
    ("2.2.1", "tokens", "language", None),
    ("2.2.1", "locations", "evses[0].connectors[0].standard", "iec_62196_t2"),  # open enum
    ("2.3.0", "tokens", "type", "rfid"),  # open in 2.3.0: an unknown value, kept as sent
]
DEAD = [
    # A required field missing, or null.
    ("2.2.1", "tokens", "contract_id", DELETE, "contract_id: Field required"),
    ("2.2.1", "tokens", "last_updated", None, "last_updated: Input should be a valid string"),
    # No value where the spec needs one: an empty "+" list or required string.
    ("2.2.1", "locations", "evses[0].connectors", [], "evses[0].connectors: List should"),
    ("2.2.1", "tokens", "country_code", "", "country_code: String should have at least 1"),
    # A JSON type that cannot be read as the field's type.
    ("2.2.1", "tokens", "valid", "true", "valid: Input should be a valid boolean"),
    ("2.2.1", "tokens", "last_updated", 1544462710, "last_updated: Input should be a valid str"),
    ("2.2.1", "locations", "evses[0].connectors[0].max_amperage", "16",
     "evses[0].connectors[0].max_amperage: Input should be a valid integer"),
    ("2.2.1", "locations", "coordinates", "51.0,3.7", "coordinates: Input should be an object"),
    # A DateTime no dialect explains.
    ("2.2.1", "tokens", "last_updated", "2018-02-30T10:00:00Z", "last_updated: String should"),
    ("2.2.1", "tokens", "last_updated", "yesterday", "last_updated: String should match"),
    ("2.2.1", "tokens", "last_updated", "10/12/2018 17:25", "last_updated: String should match"),
    ("2.1.1", "tokens", "last_updated", "2015-06-29T22:39:09+25:00", "last_updated: String"),
    # A closed-enum value not in the version's list, in any case.
    ("2.2.1", "tokens", "whitelist", "SOMETIMES", "whitelist: Input should be 'ALWAYS'"),
    ("2.2.1", "tokens", "whitelist", "sometimes", "whitelist: Input should be 'ALWAYS'"),
    ("2.2.1", "locations", "evses[0].connectors[1].format", "plug",
     "evses[0].connectors[1].format: Input should be"),
    ("2.2.1", "tokens", "type", "rf1d", "type: Input should be"),
    # "\u212a" (KELVIN SIGN) lower-cases to "k": a look-alike is not the listed value.
    ("2.2.1", "locations", "evses[1].status", "BLOC\u212aED", "evses[1].status: Input should"),
    ("2.1.1", "tokens", "type", "emaid_user", "type: Input should be"),
]
# fmt: on


def parse_path(text: str) -> tuple[Any, ...]:
    """``("evses", 0, "status")`` from ``evses[0].status``."""
    return tuple(
        int(part) if part.isdigit() else part
        for part in text.replace("[", ".").replace("]", "").split(".")
    )


def judge(version: str, module: str, obj: Any) -> PageReport:
    page = [load(version, BASE[(version, module)]), obj]
    report = PageValidator(version, module, "lenient").check_items(page)
    assert all(bad.index == 1 for bad in report.invalid)
    assert 0 not in report.dialects
    return report


@pytest.mark.parametrize(("version", "module", "where", "value", "dialects", "read"), KEPT)
def test_kept_with_dialects(
    version: str,
    module: str,
    where: str,
    value: Any,
    dialects: set[Dialect],
    read: Any,
) -> None:
    path = parse_path(where)
    base = load(version, BASE[(version, module)])
    obj = mutate(base, path, value)
    sent = copy.deepcopy(obj)
    assert PageValidator(version, module, "strict").validate_items([obj]) != []
    report = judge(version, module, obj)
    assert report.invalid == []
    assert report.dialects == {1: frozenset(dialects)}
    assert report.dialect_counts() == dict.fromkeys(dialects, 1)
    assert set(report.examples) == dialects
    assert obj == sent  # the partner's object is never changed
    if read is None:  # nothing to rewrite: our logic reads the object as sent
        assert report.readings == {}
        assert report.reading(1, obj) is obj
    else:
        assert report.reading(1, obj) == mutate(base, path, read)
        assert report.examples[next(iter(dialects))].startswith(where)
        assert PageValidator(version, module, "strict").validate_items([report.readings[1]]) == []


@pytest.mark.parametrize(("version", "module", "where", "value"), KEPT_AS_IS)
def test_what_the_spec_allows_is_no_dialect(
    version: str, module: str, where: str, value: Any
) -> None:
    obj = mutate(load(version, BASE[(version, module)]), parse_path(where), value)
    assert PageValidator(version, module, "strict").validate_items([obj]) == []
    assert judge(version, module, obj) == PageReport([])


@pytest.mark.parametrize(("version", "module", "where", "value", "expected"), DEAD)
def test_dead_lettered_when_unusable(
    version: str, module: str, where: str, value: Any, expected: str
) -> None:
    obj = mutate(load(version, BASE[(version, module)]), parse_path(where), value)
    report = judge(version, module, obj)
    assert [bad.index for bad in report.invalid] == [1]
    assert report.invalid[0].errors[0].startswith(expected), report.invalid[0].errors
    assert report.dialects == report.readings == {}


def test_dead_letters_list_only_what_made_the_object_unusable() -> None:
    token = load("2.2.1", BASE[("2.2.1", "tokens")])
    token |= {"last_updated": "2024-03-04 03:00:00", "uid": "X" * 40, "whitelist": "never"}
    token |= {"valid": "yes", "type": "RFIDX"}
    report = PageValidator("2.2.1", "tokens").check_items([token])
    assert report.invalid == [
        InvalidObject(
            0,
            (
                "type: Input should be 'AD_HOC_USER', 'APP_USER', 'OTHER', 'RFID' or 'EMAID'",
                "valid: Input should be a valid boolean",
            ),
        )
    ]


def test_the_issues_open_source_server() -> None:
    """Every timestamp of every Location reads `2024-03-04 03:00:00+00:00`: all dead letters
    before lenient mode, all kept now."""
    locations = []
    for index in range(120):
        location = load("2.2.1", "location_example.json")
        location["id"] = f"LOC{index}"
        for path in datetime_paths(location, "2.2.1", "locations"):
            location = mutate(location, path, "2024-03-04 03:00:00+00:00")
        locations.append(location)
    assert len(list(datetime_paths(locations[0], "2.2.1", "locations"))) == 6
    strict = PageValidator("2.2.1", "locations", "strict").check_items(locations)
    assert [bad.index for bad in strict.invalid] == list(range(120))
    report = PageValidator("2.2.1", "locations").check_items(locations)
    assert report.invalid == []
    assert report.dialect_counts() == {SPACE: 120, OFFSET: 120}
    assert report.examples[SPACE] == "evses[0].connectors[0].last_updated"
    assert all(r["last_updated"] == "2024-03-04T03:00:00Z" for r in report.readings.values())
    assert all(o["last_updated"] == "2024-03-04 03:00:00+00:00" for o in locations)


def test_a_mixed_page() -> None:
    token = load("2.2.1", BASE[("2.2.1", "tokens")])
    page: list[Any] = [
        token,
        token | {"last_updated": "2024-03-04 03:00:00"},
        token | {"whitelist": "SOMETIMES"},
        token | {"type": "app_user", "last_updated": "2024-03-04T03:00:00+00:00"},
        42,
        token | {"issuer": "I" * 65},
        token,
    ]
    for check in (
        PageValidator("2.2.1", "tokens").check_items,
        lambda items: PageValidator("2.2.1", "tokens").check([orjson.dumps(i) for i in items]),
    ):
        report = check(page)
        assert [bad.index for bad in report.invalid] == [2, 4]
        assert report.dialects == {
            1: {SPACE},
            3: {CASE, OFFSET},
            5: {OUT},
        }
        assert report.dialect_counts() == {SPACE: 1, CASE: 1, OFFSET: 1, OUT: 1}
        assert report.examples == {
            SPACE: "last_updated",
            CASE: "type",
            OFFSET: "last_updated",
            OUT: "issuer: String should have at most 64 characters",
        }
        assert sorted(report.readings) == [1, 3]
        assert report.reading(3, page[3])["type"] == "APP_USER"
        assert report.reading(0, page[0]) is page[0]


def test_an_element_that_is_not_json_is_dead_in_both_modes() -> None:
    token = orjson.dumps(load("2.2.1", BASE[("2.2.1", "tokens")]))
    page = [token, b'{"uid": "1", "last_updated": "2024-03-04 03:00:00"', token]
    for mode in ("strict", "lenient"):
        report = PageValidator("2.2.1", "tokens", mode).check(page)  # type: ignore[arg-type]
        assert [bad.index for bad in report.invalid] == [1]
        assert report.invalid[0].errors[0].startswith("(root): Invalid JSON")


def test_rewriting_copies_only_the_rewritten_paths() -> None:
    obj = {"a": {"b": [1, {"c": "x"}], "d": {"e": 1}}, "f": [1]}
    result = rewritten(obj, [Rewrite(("a", "b", 1, "c"), "y", frozenset())])
    assert obj == {"a": {"b": [1, {"c": "x"}], "d": {"e": 1}}, "f": [1]}
    assert result == {"a": {"b": [1, {"c": "y"}], "d": {"e": 1}}, "f": [1]}
    assert result["a"]["d"] is obj["a"]["d"]
    assert result["f"] is obj["f"]
    two = rewritten(
        obj, [Rewrite(("a", "b", 0), "p", frozenset()), Rewrite(("f", 0), "q", frozenset())]
    )
    assert two == {"a": {"b": ["p", {"c": "x"}], "d": {"e": 1}}, "f": ["q"]}
    with pytest.raises(TypeError, match="cannot rewrite inside a str"):
        rewritten({"a": "text"}, [Rewrite(("a", "b"), "x", frozenset())])


# --- Properties -----------------------------------------------------------------------------


@functools.cache
def schema_of(version: str, module: str) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model_for(version, module).model_json_schema()
    return schema, schema.get("$defs", {})


def leaves(
    value: Any, schema: dict[str, Any], defs: dict[str, Any], path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(path, schema) of every string leaf of ``value`` (which matches ``schema``)."""
    if "$ref" in schema:
        yield from leaves(value, defs[schema["$ref"].split("/")[-1]], defs, path)
    elif "anyOf" in schema or "oneOf" in schema:
        for option in schema.get("anyOf") or schema["oneOf"]:
            resolved = defs[option["$ref"].split("/")[-1]] if "$ref" in option else option
            kind = {dict: "object", list: "array", str: "string"}.get(type(value))
            if resolved.get("type") == kind:
                yield from leaves(value, option, defs, path)
                return
    elif isinstance(value, dict):
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                yield from leaves(sub, schema["properties"][key], defs, (*path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from leaves(item, schema["items"], defs, (*path, index))
    elif isinstance(value, str):
        yield path, schema


def datetime_paths(obj: Any, version: str, module: str) -> Iterator[tuple[Any, ...]]:
    schema, defs = schema_of(version, module)
    return (p for p, s in leaves(obj, schema, defs) if s.get("format") == "date-time")


def closed_enum_paths(obj: Any, version: str, module: str) -> Iterator[tuple[Any, ...]]:
    schema, defs = schema_of(version, module)
    # Only values with a letter: "N/A" in another case is still "N/A".
    return (
        p
        for p, s in leaves(obj, schema, defs)
        if "enum" in s and any(c.isalpha() for c in value_at(obj, p))
    )


def value_at(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def examples() -> Iterator[tuple[str, str, Any]]:
    """Every whole-object spec example: (version, module, object)."""
    prefixes = {"token": "tokens", "location": "locations", "tariff": "tariffs"}
    prefixes |= {"session": "sessions", "cdr": "cdrs", "tariffrestriction": "tariffs"}
    fragments = ("location_energymix", "location_hours", "location_regularhours", "transport_")
    for version in VERSIONS:
        for path in sorted((FIXTURES / version).glob("*.json")):
            if not path.name.startswith(fragments):
                obj = json.loads(path.read_text(encoding="utf-8"))
                yield version, prefixes[path.name.split("_")[0]], obj


EXAMPLES = list(examples())
DIALECT_TEXTS = [
    ("{date} {time}", {SPACE}),
    ("{date}t{time}z", {LOWER}),
    ("{date}T{time}+00:00", {OFFSET}),
    ("{date} {time}-0000", {SPACE, COMPACT}),
    ("{date}T{time}.0000000000", {LONG}),
    ("{date} {time}.12345678901+00", {SPACE, LONG, COMPACT}),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_dialect_anywhere_is_read_and_reported(data: st.DataObject) -> None:
    """Rewrite some DateTimes of a spec example into dialects and some closed-enum values into
    another case: lenient keeps the object, names exactly those dialects, and reads each
    rewritten value as its canonical form; strict rejects it."""
    version, module, original = data.draw(st.sampled_from(EXAMPLES))
    obj, expected_reading, expected = copy.deepcopy(original), copy.deepcopy(original), set()
    for path in datetime_paths(original, version, module):
        if not data.draw(st.booleans()):
            continue
        instant = parse_datetime(value_at(original, path))
        assert instant is not None
        pattern, dialects = data.draw(st.sampled_from(DIALECT_TEXTS))
        if version == "2.1.1":
            dialects = dialects - {OFFSET}
        date, time = instant.canonical[:10], instant.canonical[11:19]
        text = pattern.format(date=date, time=time)
        obj = mutate(obj, path, text)
        parsed = parse_datetime(text)
        assert parsed is not None
        expected_reading = mutate(expected_reading, path, parsed.canonical if dialects else text)
        expected |= dialects
    for path in closed_enum_paths(original, version, module):
        if data.draw(st.booleans()):
            obj = mutate(obj, path, value_at(original, path).lower())
            expected.add(CASE)
    sent = copy.deepcopy(obj)
    report = PageValidator(version, module).check_items([obj])
    assert report.invalid == []
    assert report.dialects == ({0: frozenset(expected)} if expected else {})
    assert obj == sent
    if expected:
        assert report.reading(0, obj) == expected_reading
        assert PageValidator(version, module, "strict").validate_items([obj]) != []
    else:
        assert report.reading(0, obj) is obj


@settings(max_examples=300, deadline=None)
@given(case=_mutated_pages())
def test_lenient_keeps_all_strict_keeps_and_explains_the_rest(
    case: tuple[str, str, list[Any]],
) -> None:
    version, module, page = case
    sent = copy.deepcopy(page)
    strict = PageValidator(version, module, "strict").check_items(page)
    report = PageValidator(version, module, "lenient").check_items(page)
    strict_bad = {bad.index for bad in strict.invalid}
    lenient_bad = {bad.index for bad in report.invalid}
    assert lenient_bad <= strict_bad
    # Every object kept only by lenient is explained by a dialect, and nothing else is.
    assert set(report.dialects) == strict_bad - lenient_bad
    assert all(report.dialects.values())
    assert set(report.readings) <= set(report.dialects)
    assert page == sent
    for reading in report.readings.values():
        assert PageValidator(version, module, "lenient").check_items([reading]).invalid == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", MODULES)
def test_every_version_and_module_reads_dialects(version: str, module: str) -> None:
    objects = [obj for v, m, obj in EXAMPLES if (v, m) == (version, module)]
    assert objects
    page = []
    for obj in objects:
        for path in datetime_paths(obj, version, module):
            obj = mutate(obj, path, value_at(obj, path).replace("T", " ", 1))
        page.append(obj)
    report = PageValidator(version, module).check_items(page)
    assert report.invalid == []
    assert report.dialect_counts() == {SPACE: len(page)}


def test_every_dialect_is_named_and_described() -> None:
    assert set(DESCRIPTIONS) == set(Dialect)
    assert all(name == name.lower() and " " not in name for name in Dialect)
