"""Tombstones only from a complete catch-up read (P13): a read of the objects updated during the
pull that is cut short (a refused or gone next link, a pagination loop, a shortfall) tombstones
nothing, says why in `tombstones_skipped`, and never fails the pull that was complete."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web

from tests.scripted_partner import relay
from tests.support import pull, records, sandbox

MODULE_PATH = "/ocpi/cpo/2.2.1/tariffs"


def is_catch_up(request: web.Request) -> bool:
    """The read of objects updated after the pin: a date_from and no date_to."""
    return "date_from" in request.query and "date_to" not in request.query


def breaking(how: str) -> Any:
    """A rewrite that breaks the catch-up read in one way and leaves every other page alone."""

    def rewrite(
        request: web.Request, status: int, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        if is_catch_up(request) or request.path.startswith("/gone/"):
            later_page = request.path.startswith("/gone/") or request.query.get("offset") != "0"
            if how == "gone" and later_page:
                return web.Response(status=404)
            if how == "refused" and "Link" in headers:
                headers["Link"] = '<http://127.0.0.2:9/elsewhere?offset=10>; rel="next"'
            elif how == "gone" and "Link" in headers:
                headers["Link"] = f'<{request.url.origin()}/gone/1>; rel="next"'
            elif how == "loop":
                headers["Link"] = f'<{request.url}>; rel="next"'
            elif how == "short":
                headers["X-Total-Count"] = str(int(headers.get("X-Total-Count", "0")) + 50)
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/json"
        )

    return rewrite


@pytest.mark.parametrize(
    ("how", "reason", "repair"),
    [
        ("refused", "failed", "off"),  # with repair on, the link is repaired: see below
        ("gone", "failed", "auto"),
        ("loop", "failed", "auto"),
        ("short", "fell short", "auto"),
    ],
)
async def test_a_catch_up_read_cut_short_tombstones_nothing(
    bootstrap: str, prefix: str, how: str, reason: str, repair: str
) -> None:
    async with sandbox(sizes={"tariffs": 300}) as (base, state):
        async with relay(base) as partner:
            first = await pull(
                partner, bootstrap, prefix, url=f"{partner}{MODULE_PATH}", module=None,
                emit_tombstones=True,
            )  # fmt: skip
            assert first.exit_code == 0
        dataset = state.datasets["tariffs"]
        now = int(time.time() * 1000)
        for index in (5, 77, 200, 299):
            dataset.delete(index, now)
        for index in range(20, 50):  # updated after the pin: 30 objects, 3 pages of 10
            dataset.update(index, now)
        async with relay(base, breaking(how)) as partner:
            second = await pull(
                partner,
                bootstrap,
                prefix,
                url=f"{partner}{MODULE_PATH}",
                module=None,
                emit_tombstones=True,
                limit=10,
                date_to=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 5)),
                link_repair=repair,
            )
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert summary.complete
    assert summary.pull_complete_all_shards
    assert summary.tombstones == 0
    assert summary.tombstones_skipped is not None
    assert "catch-up read" in summary.tombstones_skipped
    assert reason in summary.tombstones_skipped, summary.tombstones_skipped
    produced = await records(bootstrap, f"{prefix}.tariffs")
    assert not [r for r in produced if r.value is None]


async def test_a_complete_catch_up_read_through_the_same_relay_tombstones(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tariffs": 300}) as (base, state), relay(base) as partner:
        first = await pull(
            partner, bootstrap, prefix, url=f"{partner}{MODULE_PATH}", module=None,
            emit_tombstones=True,
        )  # fmt: skip
        assert first.exit_code == 0
        dataset = state.datasets["tariffs"]
        now = int(time.time() * 1000)
        for index in (5, 77, 200, 299):
            dataset.delete(index, now)
        for index in range(20, 50):
            dataset.update(index, now)
        second = await pull(
            partner,
            bootstrap,
            prefix,
            url=f"{partner}{MODULE_PATH}",
            module=None,
            emit_tombstones=True,
            limit=10,
            date_to=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 5)),
        )
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert summary.tombstones == 4
    assert summary.tombstones_skipped is None


async def test_a_refused_catch_up_link_is_repaired_and_the_read_completes(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tariffs": 300}) as (base, state):
        async with relay(base) as partner:
            first = await pull(
                partner, bootstrap, prefix, url=f"{partner}{MODULE_PATH}", module=None,
                emit_tombstones=True,
            )  # fmt: skip
            assert first.exit_code == 0
        dataset = state.datasets["tariffs"]
        now = int(time.time() * 1000)
        for index in (5, 77, 200, 299):
            dataset.delete(index, now)
        for index in range(20, 50):
            dataset.update(index, now)
        async with relay(base, breaking("refused")) as partner:
            second = await pull(
                partner,
                bootstrap,
                prefix,
                url=f"{partner}{MODULE_PATH}",
                module=None,
                emit_tombstones=True,
                limit=10,
                date_to=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 5)),
            )
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert summary.tombstones == 4
    assert summary.link_repairs > 0
