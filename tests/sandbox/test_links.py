"""Broken next links as real OCPI servers send them, and a partner that ignores offset."""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from producer.ocpi.protocol.links import find_next_target, parse_link_header
from sandbox.config import PY_OCPI, LinkDefect
from tests.sandbox.paging import raw_get, walk_chain
from tests.support import auth_header, get, sandbox

TOKENS = "/ocpi/emsp/2.2.1/tokens"
LOCATIONS = "/ocpi/cpo/2.2.1/locations"
WINDOW = "date_from=2020-01-01T00:00:10Z&date_to=2020-01-01T00:01:00Z"


async def first_link(
    defects: tuple[LinkDefect, ...], path: str = TOKENS, query: str = "limit=10", **config: object
) -> tuple[str, str]:
    """The sandbox's base URL and the target of the first page's next link."""
    async with sandbox(sizes={"tokens": 100, "locations": 100}, link_defects=defects, **config) as (
        base,
        _,
    ):
        _, _, headers = await get(f"{base}{path}?{query}", auth_header())
    [link] = parse_link_header(headers["Link"])
    return base, link.target


async def test_https_defect_links_with_https_on_a_plain_http_server() -> None:
    base, target = await first_link(("https",))
    assert base.startswith("http://")
    assert target == f"https://{base.removeprefix('http://')}{TOKENS}?offset=10&limit=10"


async def test_https_link_cannot_be_followed_as_given() -> None:
    async with sandbox(sizes={"tokens": 30}, link_defects=("https",)) as (base, _):
        _, _, headers = await get(f"{base}{TOKENS}?limit=10", auth_header())
        target = find_next_target([headers["Link"]])
        assert target is not None
        with pytest.raises(aiohttp.ClientError):
            await get(target, auth_header())
        status, body, _ = await get(target.replace("https://", "http://"), auth_header())
    assert status == 200  # the rest of the link is right
    assert len(body["data"]) == 10


async def test_wrong_role_links_the_emsp_tokens_list_to_a_cpo_path_that_404s() -> None:
    async with sandbox(sizes={"tokens": 100}, link_defects=("wrong-role",)) as (base, _):
        _, _, headers = await get(f"{base}{TOKENS}?limit=10", auth_header())
        target = find_next_target([headers["Link"]])
        assert target is not None
        status, body, _ = await get(target, auth_header())
    assert URL(target).path == "/ocpi/cpo/2.2.1/tokens"
    assert status == 404
    assert body["status_code"] == 2000


async def test_wrong_role_is_harmless_on_cpo_modules() -> None:
    async with sandbox(sizes={"locations": 25}, link_defects=("wrong-role",)) as (base, _):
        objects, pages = await walk_chain(base, f"{LOCATIONS}?limit=10")
    assert len(objects) == 25
    assert len(pages) == 3


async def test_enum_path_writes_python_enum_names_into_the_path_and_404s() -> None:
    async with sandbox(sizes={"locations": 30}, link_defects=("enum-path",)) as (base, _):
        _, _, headers = await get(f"{base}{LOCATIONS}?limit=10", auth_header())
        target = find_next_target([headers["Link"]])
        assert target is not None
        status, _, _ = await get(target, auth_header())
    assert URL(target).path == "/ocpi/cpo/VersionNumber.v_2_2_1/ModuleID.locations"
    assert status == 404


async def test_none_filters_write_unset_dates_as_none_and_the_endpoint_answers_422() -> None:
    async with sandbox(sizes={"tokens": 30}, link_defects=("none-filters",)) as (base, _):
        _, _, headers = await get(f"{base}{TOKENS}?limit=10", auth_header())
        target = find_next_target([headers["Link"]])
        assert target is not None
        status, body, _ = await get(target, auth_header())
    assert URL(target).query["date_from"] == "None"
    assert URL(target).query["date_to"] == "None"
    assert status == 422
    assert body["detail"][0]["loc"] == ["query", "date_from"]
    assert body["detail"][0]["type"] == "value_error.datetime"


async def test_none_filters_write_set_dates_as_python_str_which_still_work() -> None:
    async with sandbox(sizes={"tokens": 500}, link_defects=("none-filters",)) as (base, _):
        objects, pages = await walk_chain(base, f"{TOKENS}?{WINDOW}&limit=7")
    link = URL(find_next_target([pages[0]["Link"]]) or "")
    assert link.query["date_from"] == "2020-01-01 00:00:10+00:00"
    assert link.query["date_to"] == "2020-01-01 00:01:00+00:00"
    assert len(objects) == 50


async def test_an_unparseable_date_is_400_with_an_ocpi_body_without_the_defect() -> None:
    async with sandbox(sizes={"tokens": 5}) as (base, _):
        status, body, _ = await get(f"{base}{TOKENS}?date_from=None", auth_header())
    assert status == 400
    assert body["status_code"] == 2001


async def test_empty_last_sends_an_empty_link_header_on_the_last_page_only() -> None:
    async with sandbox(sizes={"tokens": 25}, link_defects=("empty-last",)) as (base, _):
        _, _, first = await raw_get(f"{base}{TOKENS}?limit=10", auth_header())
        _, _, last = await raw_get(f"{base}{TOKENS}?offset=20&limit=10", auth_header())
    assert first.getall("Link")[0].startswith("<http://")
    assert last.getall("Link") == [""]


async def test_without_empty_last_the_last_page_has_no_link_header() -> None:
    async with sandbox(sizes={"tokens": 25}) as (base, _):
        _, _, last = await raw_get(f"{base}{TOKENS}?offset=20&limit=10", auth_header())
    assert "Link" not in last


@pytest.mark.parametrize(("defects", "x_limit"), [((), "1000"), (("echo-limit",), "5000")])
async def test_echo_limit_repeats_the_asked_limit_in_x_limit(
    defects: tuple[LinkDefect, ...], x_limit: str
) -> None:
    async with sandbox(sizes={"tokens": 2500}, max_limit=1000, link_defects=defects) as (base, _):
        _, body, headers = await get(f"{base}{TOKENS}?limit=5000", auth_header())
    assert headers["X-Limit"] == x_limit
    assert len(body["data"]) == 1000  # the cap still holds


async def test_cross_origin_links_lead_to_the_foreign_origin() -> None:
    base, target = await first_link(("cross-origin",))
    port = URL(base).port
    assert port is not None
    assert target.startswith(f"http://127.0.0.1:{port + 1}{TOKENS}?")
    _, configured = await first_link(("cross-origin",), foreign_origin="http://elsewhere.test:81")
    assert configured.startswith(f"http://elsewhere.test:81{TOKENS}?offset=10&limit=10")


async def test_unparseable_links_are_no_url() -> None:
    _, target = await first_link(("unparseable",))
    with pytest.raises(ValueError, match="IPv6"):
        URL(target)


async def test_no_rel_sends_one_uri_reference_without_parameters() -> None:
    async with sandbox(sizes={"tokens": 30}, link_defects=("no-rel",)) as (base, _):
        _, _, headers = await get(f"{base}{TOKENS}?limit=10", auth_header())
        [link] = parse_link_header(headers["Link"])
        status, body, _ = await get(link.target, auth_header())
    assert headers["Link"] == f"<{base}{TOKENS}?offset=10&limit=10>"
    assert link.params == ()
    assert status == 200
    assert len(body["data"]) == 10


async def test_py_ocpi_preset_breaks_the_link_but_offsets_on_the_endpoint_work() -> None:
    async with sandbox(sizes={"tokens": 25}, link_defects=PY_OCPI, max_limit=10) as (base, _):
        _, _, headers = await raw_get(f"{base}{TOKENS}?limit=50", auth_header())
        pages = [
            await get(f"{base}{TOKENS}?offset={n}&limit=10", auth_header()) for n in (0, 10, 20)
        ]
    [link] = parse_link_header(headers["Link"])
    url = URL(link.target)
    assert url.scheme == "https"
    assert url.path == "/ocpi/cpo/VersionNumber.v_2_2_1/ModuleID.tokens"
    assert (url.query["date_from"], url.query["date_to"]) == ("None", "None")
    assert headers["X-Limit"] == "50"
    assert sum(len(body["data"]) for _, body, _ in pages) == 25
    assert pages[2][2]["Link"] == ""


@pytest.mark.parametrize("mode", ["with-link", "without-link"])
async def test_a_partner_that_ignores_offset_serves_the_first_page_again(mode: str) -> None:
    async with sandbox(sizes={"tokens": 30}, ignore_offset=mode) as (base, _):
        _, first, first_headers = await get(f"{base}{TOKENS}?limit=10", auth_header())
        _, later, later_headers = await get(f"{base}{TOKENS}?offset=10&limit=10", auth_header())
        if mode == "with-link":
            objects, pages = await walk_chain(base, f"{TOKENS}?limit=10")
    assert later["data"] == first["data"]
    assert later_headers["X-Total-Count"] == "30"
    if mode == "without-link":
        assert "Link" not in first_headers
        assert "Link" not in later_headers
    else:
        assert "offset=20&limit=10" in later_headers["Link"]
        assert len(pages) == 3  # the chain ends as if offset had been honoured ...
        assert len({o["uid"] for o in objects}) == 10  # ... with the same 10 objects thrice
