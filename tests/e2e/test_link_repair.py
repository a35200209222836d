"""Partners whose next links are broken (issue 13): each defect as the sandbox reproduces it.

With --link-repair auto (the default) a link that leads elsewhere or does not parse is never
followed, one that fails when followed is not tried again, and the window is read on by offset on
the endpoint's own URL: every object arrives. With --link-repair off the refusal stands (exit 5).
A partner that ignores offset ends with a defined error, never a loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sandbox.config import PY_OCPI
from tests.scripted_partner import relay
from tests.support import keys, pinned_ms, pull, sandbox, truth_keys

TOKENS = 2_000
MODULE_URL = "/ocpi/emsp/2.2.1/tokens"


async def pull_tokens(base: str, bootstrap: str, prefix: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"limit": 100, "ocpi_version": "2.2.1"}
    values.update(overrides)
    return await asyncio.wait_for(pull(base, bootstrap, prefix, **values), 120)


@pytest.mark.parametrize(
    "defects",
    [
        ("https",),
        ("wrong-role",),
        ("enum-path",),
        ("none-filters",),
        ("cross-origin",),
        ("unparseable",),
        PY_OCPI,
    ],
    ids=lambda d: "+".join(d) if len(d) < 3 else "py-ocpi",
)
async def test_a_broken_next_link_is_repaired_and_every_object_arrives(
    bootstrap: str, prefix: str, defects: tuple[str, ...]
) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=100, link_defects=defects) as (
        base,
        state,
    ):
        result = await pull_tokens(base, bootstrap, prefix)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
        foreign = state.stats.as_dict()
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.complete
    assert summary.link_repairs > 0
    warning = next(w for w in summary.warnings if w.startswith("next_link_repaired"))
    assert "sandbox-token" not in warning
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    assert foreign["statuses"].get("404", 0) <= 1  # a failing link is tried once, not per page


@pytest.mark.parametrize("defects", [("https",), ("cross-origin",), ("unparseable",)])
async def test_without_repair_a_link_that_cannot_be_followed_is_refused(
    bootstrap: str, prefix: str, defects: tuple[str, ...]
) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=100, link_defects=defects) as (
        base,
        _,
    ):
        result = await pull_tokens(base, bootstrap, prefix, link_repair="off")
    summary = result.summaries[0]
    assert result.exit_code == 5, summary
    assert summary.error_kind == "unsafe_link"
    assert summary.link_repairs == 0


async def test_without_repair_a_link_that_fails_ends_the_pull(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=100, link_defects=("none-filters",)) as (
        base,
        _,
    ):
        result = await pull_tokens(base, bootstrap, prefix, link_repair="off")
    summary = result.summaries[0]
    assert result.exit_code == 5, summary
    assert "422" in (summary.error or "")


async def test_an_empty_link_header_ends_the_list(bootstrap: str, prefix: str) -> None:
    async with sandbox(
        sizes={"tokens": TOKENS}, max_limit=100, link_defects=("empty-last", "echo-limit")
    ) as (base, state):
        result = await pull_tokens(base, bootstrap, prefix, limit=1000)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.link_repairs == 0
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


async def test_a_link_without_rel_is_the_next_page(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=100, link_defects=("no-rel",)) as (
        base,
        state,
    ):
        result = await pull_tokens(base, bootstrap, prefix)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert any(w.startswith("link_without_rel: ") for w in summary.warnings)
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


@pytest.mark.parametrize("ignore", ["with-link", "without-link"])
async def test_a_partner_that_ignores_offset_ends_with_a_defined_error(
    bootstrap: str, prefix: str, ignore: str
) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=100, ignore_offset=ignore) as (
        base,
        state,
    ):
        result = await pull_tokens(base, bootstrap, prefix)
        served = state.stats.pages_served
    summary = result.summaries[0]
    assert result.exit_code == 5, summary
    assert not summary.complete
    assert served < 60  # found out, not looped through 20 pages again and again
    if ignore == "with-link":
        assert any("offset_ignored" in w for w in summary.warnings), summary.warnings


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_same_origin_redirects_are_followed_with_the_credentials(
    bootstrap: str, prefix: str, status: int
) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=100, redirect_status=status) as (
        base,
        state,
    ):
        direct = await pull_tokens(base, bootstrap, prefix, url=f"{base}{MODULE_URL}", module=None)
        discovered = await pull_tokens(base, bootstrap, f"{prefix}b", url=f"{base}/ocpi/versions")
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(direct))
        pages = state.stats.pages_served
    for result in (direct, discovered):
        assert result.exit_code == 0, result.summaries[0]
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    # The redirect is remembered: not every page costs a second request.
    assert pages < 2 * (2 * TOKENS // 100) + 10


async def test_a_cross_origin_redirect_is_refused(bootstrap: str, prefix: str) -> None:
    async with (
        sandbox(sizes={"tokens": TOKENS}, max_limit=100) as (elsewhere, thief),
        sandbox(
            sizes={"tokens": TOKENS},
            max_limit=100,
            redirect_status=307,
            redirect_cross_origin=True,
            foreign_origin=elsewhere,
        ) as (base, _),
    ):
        result = await pull_tokens(base, bootstrap, prefix, url=f"{base}{MODULE_URL}", module=None)
        stolen = thief.stats.as_dict()["requests"]
    summary = result.summaries[0]
    assert result.exit_code == 5, summary
    assert "another origin" in (summary.error or "")
    assert not stolen  # the token never reached the other origin


async def test_the_old_pull_clients_own_partner_is_pulled_in_full(
    bootstrap: str, prefix: str
) -> None:
    """The old PullClient's test suite pages four tokens two at a time with `Link: <url>` and no
    rel; we used to report 2 of 4."""
    async with (
        sandbox(sizes={"tokens": 4}, max_limit=2, link_defects=("no-rel",)) as (base, state),
        relay(base) as partner,
    ):
        result = await pull_tokens(partner, bootstrap, prefix, url=f"{partner}{MODULE_URL}",
                                   module=None, limit=2)  # fmt: skip
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    assert result.exit_code == 0, result.summaries[0]
    assert len(set(await keys(bootstrap, f"{prefix}.tokens"))) == 4 == len(expected)
