"""FastAPI-style trailing-slash redirects, same-origin and cross-origin."""

from __future__ import annotations

import pytest
from yarl import URL

from producer.ocpi.protocol.links import find_next_target
from tests.sandbox.paging import raw_get
from tests.support import auth_header, get, sandbox

TOKENS = "/ocpi/emsp/2.2.1/tokens"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_module_url_without_its_slash_redirects_to_the_slashed_url(status: int) -> None:
    async with sandbox(sizes={"tokens": 30}, redirect_status=status) as (base, state):
        code, _, headers = await raw_get(f"{base}{TOKENS}?limit=10&offset=5", auth_header())
        location = headers["Location"]
        served, body, _ = await get(location, auth_header())
    assert code == status
    assert location == f"{base}{TOKENS}/?limit=10&offset=5"  # absolute, same origin, query kept
    assert served == 200
    assert len(body["data"]) == 10
    assert state.stats.requests["redirect"] == 1


async def test_discovery_urls_redirect_too_and_advertise_the_unslashed_urls() -> None:
    async with sandbox(sizes={"tokens": 30}, redirect_status=307) as (base, _):
        versions_code, _, versions_headers = await raw_get(f"{base}/ocpi/versions", auth_header())
        _, versions, _ = await get(f"{base}/ocpi/versions/", auth_header())
        details_url = next(v["url"] for v in versions["data"] if v["version"] == "2.2.1")
        details_code, _, details_headers = await raw_get(details_url, auth_header())
        _, details, _ = await get(f"{details_url}/", auth_header())
        tokens_url = next(
            e["url"] for e in details["data"]["endpoints"] if e["identifier"] == "tokens"
        )
        tokens_code, _, _ = await raw_get(tokens_url, auth_header())
    assert versions_code == 307
    assert versions_headers["Location"] == f"{base}/ocpi/versions/"
    assert details_url == f"{base}/ocpi/versions/2.2.1"
    assert details_code == 307
    assert details_headers["Location"] == f"{base}/ocpi/versions/2.2.1/"
    assert tokens_url == f"{base}{TOKENS}"
    assert tokens_code == 307


async def test_next_links_use_the_slashed_url_so_they_need_no_redirect() -> None:
    async with sandbox(sizes={"tokens": 30}, redirect_status=307) as (base, _):
        _, _, headers = await get(f"{base}{TOKENS}/?limit=10", auth_header())
        target = find_next_target([headers["Link"]])
        assert target is not None
        code, _, _ = await raw_get(target, auth_header())
    assert URL(target).path == f"{TOKENS}/"
    assert code == 200


async def test_a_cross_origin_redirect_leads_to_the_foreign_origin_which_hears_nothing() -> None:
    async with (
        sandbox(sizes={"tokens": 30}) as (elsewhere, foreign),
        sandbox(sizes={"tokens": 30}, redirect_cross_origin=True, foreign_origin=elsewhere) as (
            base,
            _,
        ),
    ):
        code, _, headers = await raw_get(f"{base}{TOKENS}?limit=10", auth_header())
    assert code == 307
    assert headers["Location"] == f"{elsewhere}{TOKENS}/?limit=10"
    assert sum(foreign.stats.requests.values()) == 0


async def test_a_cross_origin_redirect_defaults_to_the_next_port_and_keeps_its_status() -> None:
    async with sandbox(sizes={"tokens": 3}, redirect_cross_origin=True, redirect_status=308) as (
        base,
        _,
    ):
        code, _, headers = await raw_get(f"{base}/ocpi/versions", auth_header())
    port = URL(base).port
    assert port is not None
    assert code == 308
    assert headers["Location"] == f"http://127.0.0.1:{port + 1}/ocpi/versions/"


async def test_without_the_flag_there_is_no_redirect() -> None:
    async with sandbox(sizes={"tokens": 3}) as (base, _):
        code, _, _ = await raw_get(f"{base}{TOKENS}", auth_header())
    assert code == 200
