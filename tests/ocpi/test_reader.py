"""The page reader (`ocpi.paging.reader`) against the path it replaced: a differential test.

The old path parsed each object, validated it with the pydantic models (`PageValidator`, strict
or lenient), keyed its reading (else the object as sent), dead-lettered what failed or had no key
and read `last_updated` from the object. The reader decodes the page once through the fast path
(msgspec types translated from the same models) and leaves to the models only what the fast path
does not accept. Both must give every object the same verdict, key, dead-letter reasons, dialects
and `last_updated`, and each page the same dialect examples: on the OCPI spec's examples, on the
sandbox's objects in every dialect it speaks and every way it breaks them, and on hypothesis-made
variants of both (values replaced, removed, added, re-cased, escaped, timestamps of every shape).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer.ocpi.paging.reader import PageReader, ReadPage, Verdict
from producer.ocpi.protocol.envelope import parse_list_envelope
from sandbox.dialects import DIALECTS, DialectWriter
from sandbox.generator import INVALID_KINDS, MODULES, VERSIONS, ObjectFactory, Party
from schemas.datetimes import epoch_seconds
from schemas.fastpath import fast_path
from schemas.keys import ObjectKeyError, PartnerIdentity, key_function
from schemas.validation import VALIDATION_MODES, PageValidator, ValidationMode

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ocpi"
IDENTITY = PartnerIdentity("NL", "SBX")
# Whole objects among the spec's example files, by name (the others are fragments).
EXAMPLE_MODULES = {
    "token_": "tokens",
    "location_example": "locations",
    "tariff_": "tariffs",
    "tariffrestriction_": "tariffs",
    "session_": "sessions",
    "cdr_": "cdrs",
}

Judged = tuple[str, str | None, tuple[str, ...], frozenset[str], int | None]


def old_path(
    version: str, module: str, mode: ValidationMode, values: list[bytes]
) -> tuple[list[Judged], dict[str, str]]:
    """What the puller made of a page before the page reader (pull/records.py, selection.py)."""
    items = [orjson.loads(value) for value in values]
    report = PageValidator(version, module, mode).check_items(items)
    errors = {bad.index: list(bad.errors) for bad in report.invalid}
    make_key = key_function(module, version, IDENTITY)
    judged: list[Judged] = []
    for index, item in enumerate(items):
        try:
            key: str | None = make_key(report.readings.get(index, item))
        except ObjectKeyError as error:
            errors.setdefault(index, []).append(str(error))
            key = None
        if index in errors:
            verdict = "dead_letter"
        else:
            verdict = "dialect" if index in report.dialects else "valid"
        stamp = epoch_seconds(item.get("last_updated")) if isinstance(item, dict) else None
        used = frozenset(d.value for d in report.dialects.get(index, ()))
        judged.append((verdict, key, tuple(errors.get(index, ())), used, stamp))
    return judged, {d.value: where for d, where in report.examples.items()}


def new_path(read: ReadPage) -> tuple[list[Judged], dict[str, str]]:
    judged: list[Judged] = []
    for position in range(len(read)):
        verdict = read.verdict(position)
        used = frozenset(d.value for d in read.dialects.get(position, ()))
        stamp = read.last_updated[position]
        if verdict is Verdict.DEAD_LETTER and isinstance(read.parsed(position), dict):
            # The old path read a dead letter's last_updated too (nothing used it).
            stamp = epoch_seconds(read.parsed(position).get("last_updated"))
        errors = read.errors.get(position, ())
        judged.append((verdict.value, read.keys[position], errors, used, stamp))
    return judged, {d.value: where for d, where in read.examples.items()}


def assert_same(version: str, module: str, values: list[bytes]) -> ReadPage:
    """Both paths agree on a page, in both validation modes; the lenient reading."""
    read = None
    # The page as the envelope hands it over: the objects' text, and the page's whole text.
    envelope = parse_list_envelope(b'{"status_code":1000,"data":[' + b",".join(values) + b"]}")
    assert envelope.items == values
    for mode in VALIDATION_MODES:
        reader = PageReader(version, module, IDENTITY, mode)
        read = reader.read(values)
        assert new_path(read) == old_path(version, module, mode, values)
        assert read.values == values  # the value is the object's text as it came
        assert new_path(reader.read(envelope.items, envelope.text)) == new_path(read)
    # Whatever the fast path accepts, the model accepts as it stands.
    accepted = fast_path(version, module).read(values).accepted
    chosen = [orjson.loads(v) for v, decoded in zip(values, accepted, strict=True) if decoded]
    assert PageValidator(version, module, "strict").validate_items(chosen) == []
    assert read is not None
    return read


def encodings(objects: list[Any]) -> list[list[bytes]]:
    """A page of objects as partners write them: UTF-8 as is, and every non-ASCII character
    escaped (`\\u00e9`), which the fast path reads with its general decoder."""
    return [
        [json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode() for o in objects],
        [json.dumps(o, separators=(",", ":")).encode() for o in objects],
    ]


# -- the OCPI spec's examples ------------------------------------------------------------------


def spec_examples(version: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {module: [] for module in MODULES}
    folder = FIXTURES / version
    for path in sorted([*folder.glob("*.json"), *folder.glob("invalid/*.json")]):
        module = next((m for p, m in EXAMPLE_MODULES.items() if path.name.startswith(p)), None)
        if module is not None:
            found[module].append(orjson.loads(path.read_bytes()))
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_the_spec_examples_are_read_as_before(version: str) -> None:
    for module, objects in spec_examples(version).items():
        for values in encodings(objects):
            assert_same(version, module, values)


# -- the sandbox's objects, in every dialect it speaks ---------------------------------------

SANDBOX_OBJECTS = 40
DIALECT_SETS = [(), *((d,) for d in DIALECTS), DIALECTS]


def sandbox_objects(
    module: str, version: str, dialects: tuple[Any, ...], invalid: Any = None
) -> list[Any]:
    factory = ObjectFactory(module, 7, Party("NL", "SBX"))
    writer = DialectWriter(dialects, module, version)
    return [
        writer.write(factory.render(i, version, 1_700_000_000_000 + i * 997, invalid=invalid), i)
        for i in range(SANDBOX_OBJECTS)
    ]


@pytest.mark.parametrize("dialects", DIALECT_SETS, ids=lambda d: "+".join(d) or "spec")
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", MODULES)
def test_sandbox_objects_in_every_dialect_are_read_as_before(
    module: str, version: str, dialects: tuple[Any, ...]
) -> None:
    objects = sandbox_objects(module, version, dialects)
    for values in encodings(objects):
        read = assert_same(version, module, values)
    assert all(key is not None for key in read.keys)


@pytest.mark.parametrize("invalid", INVALID_KINDS)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", MODULES)
def test_sandbox_objects_broken_every_way_are_read_as_before(
    module: str, version: str, invalid: Any
) -> None:
    valid = sandbox_objects(module, version, ())
    broken = sandbox_objects(module, version, (), invalid)
    page = [obj for pair in zip(valid[:10], broken[:10], strict=True) for obj in pair]
    for values in encodings(page):
        read = assert_same(version, module, values)
    assert {read.verdict(i) for i in range(1, len(page), 2)} == {Verdict.DEAD_LETTER}


# -- hypothesis-made variants ------------------------------------------------------------------

POOL: dict[tuple[str, str], list[Any]] = {}


def pool(version: str, module: str) -> list[Any]:
    """Objects to vary: the spec's examples and the sandbox's, in every dialect."""
    found = POOL.get((version, module))
    if found is None:
        found = list(spec_examples(version)[module])
        for dialects in DIALECT_SETS:
            found += sandbox_objects(module, version, dialects)[:3]
        POOL[(version, module)] = found
    return found


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON value."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for name, child in value.items():
            found += paths(child, (*prefix, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


STAMP_TEXTS = [
    "2024-02-29T12:00:00Z",
    "2023-02-29T12:00:00Z",
    "2000-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2024-03-04T03:00:00",
    "2024-03-04T03:00:00.123456789Z",
    "2024-03-04T03:00:00.1234567891Z",
    "2024-03-04 03:00:00+00:00",
    "2024-03-04t03:00:00z",
    "2024-03-04T03:00:00+0100",
    "2024-03-04T03:00:00+01:00",
    "2024-03-04T24:00:00Z",
    "2024-03-04T03:00:00Z\n",
    "2024-03-04T03:00:60Z",
    "２０２４-03-04T03:00:00Z",
]
digits = st.integers(0, 9).map(str)
stamps = st.one_of(
    # The canonical shape with any digits: months, days, leap years, hours out of range.
    st.tuples(*[digits] * 14).map(lambda d: "{}{}{}{}-{}{}-{}{}T{}{}:{}{}:{}{}Z".format(*d)),
    st.sampled_from(STAMP_TEXTS),
)
texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.sampled_from(["", " ", "rfid", "Rfid", "RFID", "app_user", "OTHER", "x\n", "\u212aWH", "ß"]),
    stamps,
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, -1, 99_999, 100_000, 1.5, -0.0, 1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


@st.composite
def variant(draw: st.DrawFn, version: str, module: str) -> Any:
    """An object of the pool, changed in a few places."""
    obj = json.loads(json.dumps(draw(st.sampled_from(pool(version, module)))))
    for _ in range(draw(st.integers(1, 3))):
        places = paths(obj)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent = obj
        for step in path[:-1]:
            parent = parent[step]
        what = draw(st.sampled_from(["replace", "stamp", "recase", "remove", "add"]))
        last = path[-1]
        if what == "replace":
            parent[last] = draw(values)
        elif what == "stamp":
            parent[last] = draw(stamps)
        elif what == "recase" and isinstance(parent[last], str):
            parent[last] = draw(st.sampled_from([str.lower, str.upper, str.swapcase]))(parent[last])
        elif what == "remove" and isinstance(parent, dict):
            del parent[last]
        elif what == "add" and isinstance(parent, dict):
            parent[draw(texts)] = draw(values)
    return obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_variants_are_read_as_before(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(VERSIONS))
    module = data.draw(st.sampled_from(MODULES))
    page = data.draw(st.lists(variant(version, module), min_size=1, max_size=4))
    plain = data.draw(st.lists(st.sampled_from(pool(version, module)), max_size=3))
    for values in encodings([*plain, *page]):
        assert_same(version, module, values)


# -- every field of an object, given every kind of value that tests a rule ----------------------

TRICKY = [
    None, True, 0, -1, 1.5, 99_999, 100_000, 2**63, -(2**63) - 1, "1", [], {}, [None], {"x": 1},
    "", " ", "x", "x\n", "\n", "\t", "\x7f", "é", "ß", "\u212a", "☃", "a\\b", 'q"q', "rfid",
    "Rfid", "RFID", "app_user", "OTHER", "NL*SBX*E0000000031", "-1.234567", "52.123456",
    "123.1234567", "10:00", "24:00", "2024-03-04", "2024-02-30",
    *("A" * n for n in (1, 2, 3, 4, 5, 6, 15, 16, 36, 37, 39, 40, 64, 65, 255, 256, 512, 513)),
    *STAMP_TEXTS,
    "1999-12-31T23:59:59Z", "2024-12-31T23:59:59.5Z", "2024-04-31T00:00:00Z",
]  # fmt: skip


def case_changes(value: Any) -> list[Any]:
    return [value.lower(), value.upper(), value.swapcase()] if isinstance(value, str) else []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", MODULES)
def test_every_field_given_every_kind_of_value_is_read_as_before(module: str, version: str) -> None:
    bases = [*spec_examples(version)[module][:1], *sandbox_objects(module, version, ())[:1]]
    for base in bases:
        for path in paths(base):
            parent = base
            for step in path[:-1]:
                parent = parent[step]
            page = []
            for value in [*TRICKY, *case_changes(parent[path[-1]])]:
                changed = json.loads(json.dumps(base))
                target = changed
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = value
                page.append(changed)
            for values in encodings(page):
                assert_same(version, module, values)


def test_an_object_nested_deeper_than_the_fast_path_goes_is_judged_by_the_model() -> None:
    token = sandbox_objects("tokens", "2.2.1", ())[0]
    deep: Any = []
    for _ in range(900):
        deep = [deep]
    values = [json.dumps({**token, "x_deep": deep}, separators=(",", ":")).encode()]
    read = assert_same("2.2.1", "tokens", values)
    assert read.verdict(0) is Verdict.VALID
