"""OCPI 2.3.0 for every module, which versions are offered, and the 2.2+ request headers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sandbox.generator import MODULES, VERSIONS
from schemas.ocpi import model_for
from tests.sandbox.paging import walk_chain
from tests.support import auth_header, get, sandbox

EXAMPLES = Path(__file__).parent.parent / "fixtures" / "ocpi" / "2.3.0"
SIZES = {"tokens": 60, "locations": 40, "tariffs": 30, "sessions": 40, "cdrs": 40}
ROLE = {"tokens": "emsp"}
SINCE = "date_from=2019-01-01T00:00:00Z"


def list_path(module: str, version: str) -> str:
    return f"/ocpi/{ROLE.get(module, 'cpo')}/{version}/{module}?{SINCE}&limit=25"


def invalid(version: str, module: str, objects: list[dict[str, Any]]) -> list[str]:
    """Validation errors of objects against the project's OCPI models."""
    model = model_for(version, module)
    errors: list[str] = []
    for obj in objects:
        try:
            model.model_validate(obj)
        except ValidationError as error:
            errors.append(f"{obj.get('id', obj.get('uid'))}: {error}")
    return errors


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", MODULES)
async def test_every_module_in_every_version_validates_against_its_models(
    module: str, version: str
) -> None:
    async with sandbox(sizes=SIZES) as (base, _):
        objects, _ = await walk_chain(base, list_path(module, version), version)
    assert len(objects) == SIZES[module]
    assert invalid(version, module, objects) == []


def json_shape(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}[type(value)]


def example_shapes(prefix: str) -> dict[str, set[str]]:
    """Field -> JSON types, over every top-level field of the spec's own 2.3.0 examples."""
    shapes: dict[str, set[str]] = {}
    for path in EXAMPLES.glob(f"{prefix}_*.json"):
        for field, value in json.loads(path.read_text()).items():
            shapes.setdefault(field, set()).add(json_shape(value))
            if isinstance(value, dict):
                for inner, inner_value in value.items():
                    shapes.setdefault(f"{field}.{inner}", set()).add(json_shape(inner_value))
    return shapes


@pytest.mark.parametrize(
    ("module", "prefix"),
    [
        ("tokens", "token"),
        ("locations", "location"),
        ("tariffs", "tariff"),
        ("sessions", "session"),
        ("cdrs", "cdr"),
    ],
)
async def test_2_3_0_objects_have_the_shape_of_the_spec_examples(module: str, prefix: str) -> None:
    shapes = example_shapes(prefix)
    async with sandbox(sizes=SIZES) as (base, _):
        objects, _ = await walk_chain(base, list_path(module, "2.3.0"), "2.3.0")
    mismatched = set()
    for obj in objects:
        for field, value in obj.items():
            if field in shapes and json_shape(value) not in shapes[field]:
                mismatched.add(field)
            if isinstance(value, dict):
                for inner, inner_value in value.items():
                    known = shapes.get(f"{field}.{inner}")
                    if known and json_shape(inner_value) not in known:
                        mismatched.add(f"{field}.{inner}")
    assert mismatched == set()


async def test_2_3_0_objects_carry_what_2_3_0_added() -> None:
    async with sandbox(sizes=SIZES) as (base, _):
        tariffs, _ = await walk_chain(base, list_path("tariffs", "2.3.0"), "2.3.0")
        locations, _ = await walk_chain(base, list_path("locations", "2.3.0"), "2.3.0")
        sessions, _ = await walk_chain(base, list_path("sessions", "2.3.0"), "2.3.0")
        cdrs, _ = await walk_chain(base, list_path("cdrs", "2.3.0"), "2.3.0")
    assert all(t["tax_included"] == "NO" for t in tariffs)
    assert any("min_price" in t for t in tariffs)
    assert all(s["total_cost"]["taxes"][0]["name"] == "VAT" for s in sessions)
    assert all("before_taxes" in c["total_cost"] for c in cdrs)
    assert all(t["tax_included"] == "NO" for c in cdrs for t in c["tariffs"])
    assert any("help_phone" in loc for loc in locations)
    for loc in locations:
        places = {p["id"] for p in loc["parking_places"]}
        assert all(ref in places for evse in loc["evses"] for ref in evse["parking"])


async def test_the_2_2_1_objects_stay_as_they_were() -> None:
    async with sandbox(sizes=SIZES) as (base, _):
        tariffs, _ = await walk_chain(base, list_path("tariffs", "2.2.1"))
        sessions, _ = await walk_chain(base, list_path("sessions", "2.2.1"))
    assert all("tax_included" not in t for t in tariffs)
    assert all("excl_vat" in s["total_cost"] for s in sessions)


async def test_version_details_of_2_3_0_list_every_module_as_sender() -> None:
    async with sandbox(sizes=SIZES) as (base, _):
        _, details, _ = await get(f"{base}/ocpi/versions/2.3.0", auth_header("2.3.0"))
    endpoints = details["data"]["endpoints"]
    assert {e["identifier"] for e in endpoints} == set(MODULES)
    assert {e["role"] for e in endpoints} == {"SENDER"}
    tokens = next(e for e in endpoints if e["identifier"] == "tokens")
    assert tokens["url"] == f"{base}/ocpi/emsp/2.3.0/tokens"


async def test_only_the_offered_versions_are_served() -> None:
    async with sandbox(sizes=SIZES, ocpi_versions=("2.3.0",)) as (base, _):
        _, versions, _ = await get(f"{base}/ocpi/versions", auth_header())
        details_221, _, _ = await get(f"{base}/ocpi/versions/2.2.1", auth_header())
        list_221, body_221, _ = await get(f"{base}/ocpi/emsp/2.2.1/tokens", auth_header())
        list_211, _, _ = await get(f"{base}/ocpi/emsp/2.1.1/tokens", auth_header("2.1.1"))
        list_230, _, _ = await get(f"{base}/ocpi/emsp/2.3.0/tokens", auth_header("2.3.0"))
    assert [v["version"] for v in versions["data"]] == ["2.3.0"]
    assert details_221 == 404
    assert (list_221, body_221["status_code"]) == (404, 2000)
    assert list_211 == 404
    assert list_230 == 200


async def test_2_3_0_wants_the_token_base64_encoded_after_exactly_one_space() -> None:
    async with sandbox(sizes=SIZES) as (base, _):
        url = f"{base}/ocpi/emsp/2.3.0/tokens"
        encoded = auth_header("2.3.0")["Authorization"].removeprefix("Token ")
        base64_ok, _, _ = await get(url, {"Authorization": f"Token {encoded}"})
        plain, _, _ = await get(url, auth_header("2.1.1"))
        two_spaces, _, _ = await get(url, {"Authorization": f"Token  {encoded}"})
    assert (base64_ok, plain, two_spaces) == (200, 401, 401)


def routing_headers(version: str = "2.3.0", **overrides: str) -> dict[str, str]:
    headers = {
        **auth_header(version),
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": str(uuid.uuid4()),
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "PUL",
        "OCPI-to-country-code": "nl",  # CiString: case does not matter
        "OCPI-to-party-id": "SBX",
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v}


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({}, 200),
        ({"X-Request-ID": ""}, 400),
        ({"X-Correlation-ID": ""}, 400),
        ({"OCPI-from-party-id": ""}, 400),
        ({"OCPI-to-country-code": ""}, 400),
        ({"OCPI-to-party-id": "XYZ"}, 400),
    ],
)
async def test_required_headers_on_module_requests(
    version: str, overrides: dict[str, str], status: int
) -> None:
    async with sandbox(sizes=SIZES, require_headers=True) as (base, state):
        code, body, headers = await get(
            f"{base}/ocpi/emsp/{version}/tokens", routing_headers(version, **overrides)
        )
    assert code == status, body
    if status == 400:
        assert body["status_code"] == 2001
    else:
        assert headers["X-Request-ID"]  # echoed
    assert state.stats.request_headers[version]["requests"] == 1


async def test_required_headers_keep_routing_headers_off_versions_endpoints() -> None:
    async with sandbox(sizes=SIZES, require_headers=True) as (base, _):
        trace = {k: v for k, v in routing_headers().items() if not k.startswith("OCPI-")}
        versions_with_routing, _, _ = await get(f"{base}/ocpi/versions", routing_headers())
        versions_plain, _, _ = await get(f"{base}/ocpi/versions", auth_header())
        details_plain, _, _ = await get(f"{base}/ocpi/versions/2.3.0", trace)
        details_untraced, _, _ = await get(f"{base}/ocpi/versions/2.3.0", auth_header())
        list_211, _, _ = await get(f"{base}/ocpi/emsp/2.1.1/tokens", auth_header("2.1.1"))
    assert (versions_with_routing, versions_plain) == (400, 200)
    assert (details_plain, details_untraced) == (200, 400)
    assert list_211 == 200  # 2.1.1 has none of these headers


async def test_stats_count_the_request_headers_per_version_without_enforcing_them() -> None:
    async with sandbox(sizes=SIZES) as (base, _):
        await get(f"{base}/ocpi/emsp/2.3.0/tokens", routing_headers())
        await get(f"{base}/ocpi/emsp/2.3.0/tokens", auth_header("2.3.0"))
        _, stats, _ = await get(f"{base}/_sandbox/stats")
    seen = stats["request_headers"]["2.3.0"]
    assert seen["requests"] == 2
    assert seen["X-Request-ID"] == 1
    assert seen["OCPI-to-party-id"] == 1


@pytest.mark.parametrize("module", MODULES)
async def test_invalid_objects_stay_invalid_in_2_3_0(module: str) -> None:
    async with sandbox(sizes=SIZES, invalid_rate=0.3) as (base, state):
        objects, _ = await walk_chain(base, list_path(module, "2.3.0"), "2.3.0")
    dataset = state.datasets[module]
    broken = sum(1 for i in range(SIZES[module]) if dataset.invalid_kind(i) is not None)
    assert broken > 0
    assert len(invalid("2.3.0", module, objects)) == broken
