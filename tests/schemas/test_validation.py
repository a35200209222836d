"""Tests for ``schemas.validation.PageValidator``: exactly the bad objects, with precise paths.

These pin ``strict`` mode, which must keep the behaviour from before the two modes existed
(same errors, same dead letters); what lenient mode accepts on top is in ``test_lenient``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.ocpi import model_for
from schemas.validation import (
    CHUNK_BYTES,
    VALIDATION_MODES,
    InvalidObject,
    PageReport,
    PageValidator,
    ValidationMode,
    format_error,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ocpi"


def load(version: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / version / name).read_text(encoding="utf-8"))
    return data


TOKEN = load("2.2.1", "token_example_2_full_rfid.json")
LOCATION = load("2.2.1", "location_example.json")


def token(uid: str, **changes: Any) -> dict[str, Any]:
    result = {**TOKEN, "uid": uid, **changes}
    return {k: v for k, v in result.items() if v is not REMOVE}


REMOVE = object()


def dumps(objects: list[Any]) -> list[bytes]:
    return [orjson.dumps(obj) for obj in objects]


def test_all_valid_page_reports_nothing() -> None:
    page = dumps([token(str(i)) for i in range(50)])
    assert PageValidator("2.2.1", "tokens", "strict").validate(page) == []
    assert PageValidator("2.2.1", "tokens", "strict").validate([]) == []


def test_mixed_page_reports_exactly_the_bad_indices_with_paths() -> None:
    page = dumps(
        [
            token("0"),
            token("1", whitelist="SOMETIMES"),
            token("2"),
            token("3", contract_id=REMOVE, valid="yes"),
            token("4", last_updated="2018-02-30T10:00:00Z"),
            token("5"),
        ]
    )
    result = PageValidator("2.2.1", "tokens", "strict").validate(page)
    assert [bad.index for bad in result] == [1, 3, 4]
    assert result[0].errors == (
        "whitelist: Input should be 'ALWAYS', 'ALLOWED', 'ALLOWED_OFFLINE' or 'NEVER'",
    )
    assert result[1].errors == (
        "contract_id: Field required",
        "valid: Input should be a valid boolean",
    )
    assert len(result[2].errors) == 1
    assert result[2].errors[0].startswith("last_updated: String should match pattern")


def test_nested_error_paths() -> None:
    location = copy.deepcopy(LOCATION)
    location["evses"][0]["connectors"][1]["format"] = "PLUG"
    location["evses"][1]["connectors"][0]["max_amperage"] = "16"
    location["opening_times"] = {"twentyfourseven": False, "regular_hours": [{"weekday": 8}]}
    result = PageValidator("2.2.1", "locations", "strict").validate(dumps([LOCATION, location]))
    assert result == [
        InvalidObject(
            1,
            (
                "evses[0].connectors[1].format: Input should be 'SOCKET' or 'CABLE'",
                "evses[1].connectors[0].max_amperage: Input should be a valid integer",
                "opening_times.regular_hours[0].weekday: Input should be less than or equal to 7",
                "opening_times.regular_hours[0].period_begin: Field required",
                "opening_times.regular_hours[0].period_end: Field required",
            ),
        )
    ]


@pytest.mark.parametrize("item", [1, "token", None, [TOKEN], True, 2.5])
def test_an_item_that_is_not_an_object(item: Any) -> None:
    page = dumps([TOKEN, item, TOKEN])
    assert PageValidator("2.2.1", "tokens", "strict").validate(page) == [
        InvalidObject(1, ("(root): Input should be an object",))
    ]


def test_malformed_json_is_reported_at_its_own_index() -> None:
    page = [orjson.dumps(TOKEN), b'{"uid": "1", ', orjson.dumps(token("2", valid=1))]
    result = PageValidator("2.2.1", "tokens", "strict").validate(page)
    assert [bad.index for bad in result] == [1, 2]
    assert result[0].errors[0].startswith("(root): Invalid JSON")
    assert result[1].errors == ("valid: Input should be a valid boolean",)


@pytest.mark.parametrize(
    "element",
    [
        b"",
        orjson.dumps(TOKEN) + b"," + orjson.dumps(TOKEN),  # two values in one element
        orjson.dumps(TOKEN) + b"]",
    ],
)
def test_an_element_that_is_not_exactly_one_json_value(element: bytes) -> None:
    page = [orjson.dumps(TOKEN), element, orjson.dumps(token("x", whitelist="NO"))]
    result = PageValidator("2.2.1", "tokens", "strict").validate(page)
    assert [bad.index for bad in result] == [1, 2]
    assert result[1].errors == (
        "whitelist: Input should be 'ALWAYS', 'ALLOWED', 'ALLOWED_OFFLINE' or 'NEVER'",
    )


def test_two_values_in_one_element_even_when_both_are_valid() -> None:
    page = [orjson.dumps(TOKEN) + b"," + orjson.dumps(TOKEN), orjson.dumps(TOKEN)]
    result = PageValidator("2.2.1", "tokens", "strict").validate(page)
    assert [bad.index for bad in result] == [0]
    assert result[0].errors[0].startswith("(root): Invalid JSON")


def test_indices_are_exact_across_chunks() -> None:
    bad_at = {0, 63, 64, 65, 127, 128, 511, 998, 999}
    objects = [token(str(i), valid="no") if i in bad_at else token(str(i)) for i in range(1000)]
    page = dumps(objects)
    assert sum(map(len, page)) > 10 * CHUNK_BYTES  # the page really spans many chunks
    result = PageValidator("2.2.1", "tokens", "strict").validate(page)
    assert [bad.index for bad in result] == sorted(bad_at)
    assert all(bad.errors == ("valid: Input should be a valid boolean",) for bad in result)


def test_an_object_larger_than_a_chunk() -> None:
    big = copy.deepcopy(LOCATION)
    big["evses"] = [copy.deepcopy(e) for _ in range(60) for e in LOCATION["evses"]]
    assert len(orjson.dumps(big)) > CHUNK_BYTES
    bad = copy.deepcopy(big)
    bad["evses"][59]["status"] = "GONE"
    result = PageValidator("2.2.1", "locations", "strict").validate(dumps([big, bad, big]))
    assert [(r.index, r.errors[0].split(":")[0]) for r in result] == [(1, "evses[59].status")]


def test_errors_do_not_echo_partner_data() -> None:
    secret = "SECRET-CONTRACT-ID-0123456789-ABCDEFG"
    result = PageValidator("2.2.1", "tokens", "strict").validate(
        dumps([token("1", contract_id=secret)])
    )
    assert result[0].errors == ("contract_id: String should have at most 36 characters",)
    assert secret not in repr(result)


def test_works_for_every_version_and_module() -> None:
    as_printed = FIXTURES / "2.1.1" / "invalid" / "cdr_example_as_printed.json"
    page = [orjson.dumps(load("2.1.1", "cdr_example.json")), as_printed.read_bytes()]
    result = PageValidator("2.1.1", "cdrs", "strict").validate(page)
    assert [r.index for r in result] == [1]
    assert len(result[0].errors) == 6
    with pytest.raises(ValueError, match="no OCPI model"):
        PageValidator("2.0", "cdrs")
    with pytest.raises(ValueError, match="validation mode must be one of"):
        PageValidator("2.2.1", "cdrs", "relaxed")  # type: ignore[arg-type]


def test_invalid_object_is_a_frozen_value() -> None:
    bad = InvalidObject(3, ("x: y",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        bad.index = 4  # type: ignore[misc]
    assert not hasattr(bad, "__dict__")


CANDIDATES = [
    TOKEN,
    token("a", type="EMAID"),
    token("b", whitelist="MAYBE"),
    token("x" * 40),
    token("d", issuer=REMOVE),
    token("e", last_updated=1544462710),
    token("f", energy_contract={"contract_id": "1"}),
    {"not": "a token"},
    42,
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(range(len(CANDIDATES))), max_size=200))
def test_page_result_equals_validating_each_object(choices: list[int]) -> None:
    page = dumps([CANDIDATES[c] for c in choices])
    model = model_for("2.2.1", "tokens")
    expected = []
    for index, raw in enumerate(page):
        try:
            model.model_validate_json(raw)
        except ValidationError as exc:
            expected.append(InvalidObject(index, tuple(format_error(e) for e in exc.errors())))
    assert PageValidator("2.2.1", "tokens", "strict").validate(page) == expected


_ODD_VALUES = st.sampled_from(
    [None, True, False, 0, 1, -1, 1.5, "1", "true", "", "x" * 300, [], {}, [1], {"a": 1}, 2**62]
)


@st.composite
def _mutated_pages(draw: st.DrawFn) -> tuple[str, str, list[Any]]:
    """A page of sandbox objects of some version/module, some fields replaced by odd values."""
    from sandbox.generator import ObjectFactory, Party

    version = draw(st.sampled_from(["2.1.1", "2.2.1"]))
    module = draw(st.sampled_from(["tokens", "locations", "tariffs", "sessions", "cdrs"]))
    factory = ObjectFactory(module, 1, Party())  # type: ignore[arg-type]
    page: list[Any] = [factory.render(i, version, 1_600_000_000_000 + i * 1000) for i in range(6)]
    for _ in range(draw(st.integers(0, 6))):
        target: Any = page[draw(st.integers(0, len(page) - 1))]
        for _depth in range(draw(st.integers(0, 3))):
            inner = [k for k, v in target.items() if isinstance(v, dict)]
            if not inner:
                break
            target = target[draw(st.sampled_from(sorted(inner)))]
        if not target:
            continue
        field = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[field]
        else:
            target[field] = copy.deepcopy(draw(_ODD_VALUES))
    if draw(st.booleans()):
        page.insert(draw(st.integers(0, len(page))), copy.deepcopy(draw(_ODD_VALUES)))
    return version, module, page


@settings(max_examples=300, deadline=None)
@given(case=_mutated_pages(), mode=st.sampled_from(VALIDATION_MODES))
def test_validating_parsed_items_equals_validating_json(
    case: tuple[str, str, list[Any]], mode: ValidationMode
) -> None:
    """The puller validates orjson-parsed dicts; that must judge exactly like the JSON bytes."""
    version, module, page = case
    validator = PageValidator(version, module, mode)
    report = validator.check_items(page)
    assert report == validator.check([orjson.dumps(o) for o in page])
    assert report.invalid == validator.validate_items(page)
    if mode == "strict":
        assert report == PageReport(report.invalid)  # no dialects, no readings


def test_modes() -> None:
    assert VALIDATION_MODES == ("strict", "lenient")
    assert PageValidator("2.2.1", "tokens").mode == "lenient"  # the issue's default
    assert PageValidator("2.2.1", "tokens", "strict").mode == "strict"


def test_a_strict_report_has_no_dialects() -> None:
    page = [token("0", last_updated="2024-03-04 03:00:00"), token("1")]
    report = PageValidator("2.2.1", "tokens", "strict").check_items(page)
    assert [bad.index for bad in report.invalid] == [0]
    assert (report.dialects, report.readings, report.examples) == ({}, {}, {})
    assert report.dialect_counts() == {}
    assert report.reading(1, page[1]) is page[1]
