"""OCPI 2.3.0 end to end, version negotiation, and the dialects real partners write (issue 17).

Discovery picks the highest version both sides speak unless --ocpi-version pins one, and the
summary says which and why. In `--validation lenient` (the default) objects written in a dialect
reach `<prefix>.<module>` as sent and are counted in the summary's `dialects`; in `strict` they
are dead-lettered as before. What the spec itself allows (lower-case CiStrings, `null` for an
absent optional field, fractions, no zone designator) is accepted in both modes.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support import keys, pinned_ms, pull, records, sandbox, truth_keys

MODULES = ("tokens", "locations", "tariffs", "sessions", "cdrs")
SIZES = {"tokens": 300, "locations": 60, "tariffs": 40, "sessions": 80, "cdrs": 80}


async def pull_module(base: str, bootstrap: str, prefix: str, module: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"module": module, "limit": 50}
    values.update(overrides)
    return await pull(base, bootstrap, prefix, **values)


@pytest.mark.parametrize("module", MODULES)
async def test_every_module_is_pulled_in_2_3_0_chosen_by_discovery(
    bootstrap: str, prefix: str, module: str
) -> None:
    async with sandbox(sizes={module: SIZES[module]}, max_limit=50, require_headers=True) as (
        base,
        state,
    ):
        result = await pull_module(
            base, bootstrap, prefix, module, from_country="DE", from_party="ABC"
        )
        expected = truth_keys(state, module, "2.3.0", pinned_ms(result))
        headers = state.stats.as_dict()["request_headers"]
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.ocpi_version == "2.3.0"
    assert "highest version both sides speak" in (summary.ocpi_version_reason or "")
    assert "2.1.1, 2.2.1, 2.3.0" in (summary.ocpi_version_reason or "")
    assert set(await keys(bootstrap, f"{prefix}.{module}")) == set(expected)
    assert summary.dead_lettered == 0
    assert headers  # the sandbox saw (and with --require-headers enforced) the 2.3.0 headers


async def test_a_pinned_version_wins_and_the_summary_says_so(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 200}, max_limit=50) as (base, _):
        result = await pull_module(base, bootstrap, prefix, "tokens", ocpi_version="2.2.1")
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.ocpi_version == "2.2.1"
    assert (summary.ocpi_version_reason or "").startswith("pinned by --ocpi-version")


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(("2.1.1", "2.2.1"), "2.2.1"), (("2.1.1",), "2.1.1"), (("2.3.0",), "2.3.0")],
)
async def test_discovery_takes_the_highest_version_offered(
    bootstrap: str, prefix: str, offered: tuple[str, ...], chosen: str
) -> None:
    async with sandbox(sizes={"tokens": 200}, max_limit=50, ocpi_versions=offered) as (base, _):
        result = await pull_module(base, bootstrap, prefix, "tokens")
    assert result.exit_code == 0, result.summaries[0]
    assert result.summaries[0].ocpi_version == chosen


async def test_pinning_a_version_the_partner_does_not_offer_is_refused(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 50}, ocpi_versions=("2.2.1",)) as (base, _):
        result = await pull_module(base, bootstrap, prefix, "tokens", ocpi_version="2.3.0")
    summary = result.summaries[0]
    assert result.exit_code == 3, summary
    assert "does not offer OCPI 2.3.0" in (summary.error or "")


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
@pytest.mark.parametrize("module", ["tokens", "locations", "cdrs"])
async def test_space_timestamps_are_read_leniently_and_refused_strictly(
    bootstrap: str, prefix: str, version: str, module: str
) -> None:
    """The open-source server's `2024-03-04 03:00:00+00:00`: every object was dead-lettered."""
    size = SIZES[module]
    async with sandbox(sizes={module: size}, max_limit=50, dialects=("space-timestamps",)) as (
        base,
        state,
    ):
        lenient = await pull_module(base, bootstrap, prefix, module, ocpi_version=version)
        strict = await pull_module(
            base, bootstrap, f"{prefix}s", module, ocpi_version=version, validation="strict"
        )
        expected = truth_keys(state, module, version, pinned_ms(lenient))
    summary = lenient.summaries[0]
    assert lenient.exit_code == 0, summary
    assert set(await keys(bootstrap, f"{prefix}.{module}")) == set(expected)
    assert summary.dead_lettered == 0
    assert summary.dialects["space_separator"] == size
    assert summary.dialects["numeric_offset"] == size
    assert any(w.startswith("dialect space_separator") for w in summary.warnings)
    # The value stays the partner's object as sent.
    value = orjson.loads((await records(bootstrap, f"{prefix}.{module}"))[0].value)
    assert " " in value["last_updated"]
    refused = strict.summaries[0]
    assert refused.dead_lettered == size
    assert refused.objects_emitted == 0
    assert refused.dialects == {}


async def test_lower_case_enum_values_are_read_leniently_and_keyed_canonically(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 200}, max_limit=50, dialects=("lowercase",)) as (
        base,
        state,
    ):
        lenient = await pull_module(base, bootstrap, prefix, "tokens", ocpi_version="2.2.1")
        strict = await pull_module(
            base, bootstrap, f"{prefix}s", "tokens", ocpi_version="2.2.1", validation="strict"
        )
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(lenient))
    summary = lenient.summaries[0]
    assert lenient.exit_code == 0, summary
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    assert summary.dialects.get("enum_case") == 200
    assert strict.summaries[0].dead_lettered == 200


@pytest.mark.parametrize("validation", ["lenient", "strict"])
@pytest.mark.parametrize("dialect", ["nulls", "fractions", "no-zone"])
async def test_what_the_spec_allows_is_accepted_in_both_modes(
    bootstrap: str, prefix: str, validation: str, dialect: str
) -> None:
    async with sandbox(sizes={"locations": 40}, max_limit=50, dialects=(dialect,)) as (
        base,
        state,
    ):
        result = await pull_module(
            base, bootstrap, prefix, "locations", ocpi_version="2.2.1", validation=validation
        )
        expected = truth_keys(state, "locations", "2.2.1", pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.dead_lettered == 0
    assert summary.dialects == {}
    assert set(await keys(bootstrap, f"{prefix}.locations")) == set(expected)
