"""PullClient: OCPI pagination as an async iterator of pages, without Kafka."""

from __future__ import annotations

import pytest
from aiohttp import web

from producer.errors import IncompletePullError, PartnerAuthError
from producer.ocpi.pull_client import Page, PullClient
from schemas.keys import PartnerIdentity
from tests.scripted_partner import PATH, offset_of, page, serve, tokens
from tests.support import TOKEN, sandbox


async def all_pages(client: PullClient) -> list[Page]:
    return [p async for p in client.pages()]


@pytest.mark.parametrize("link_style", ["absolute", "relative", "one-shot"])
async def test_pages_follow_the_partner_list_to_its_end(link_style: str) -> None:
    async with (
        sandbox(sizes={"tokens": 2345}, max_limit=300, link_style=link_style) as (base, _),
        PullClient(f"{base}/ocpi/versions", token=TOKEN, module="tokens") as client,
    ):
        pages = await all_pages(client)
    assert [p.offset for p in pages] == list(range(0, 2345, 300))
    assert all(p.limit == 300 for p in pages)
    assert all(p.total == 2345 for p in pages)
    assert pages[-1].next_url is None
    assert all(p.next_url for p in pages[:-1])
    assert len({o["uid"] for p in pages for o in p.objects}) == 2345
    assert client.outcome is not None
    assert client.outcome.complete
    assert client.endpoint is not None
    assert client.endpoint.ocpi_version == "2.3.0"  # the highest both sides speak


async def test_a_2_1_1_module_url_with_the_partner_identity() -> None:
    async with (
        sandbox(sizes={"locations": 120}) as (base, _),
        PullClient(
            f"{base}/ocpi/cpo/2.1.1/locations",
            token=TOKEN,
            partner=PartnerIdentity("NL", "SBX"),
            limit=50,
        ) as client,
    ):
        objects = [o for p in await all_pages(client) for o in p.objects]
    assert len(objects) == 120
    assert client.outcome is not None
    assert client.outcome.distinct == 120


async def test_a_list_that_ends_short_of_its_total_raises_when_strict() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        # X-Total-Count promises 1000, but the links and the objects stop after 300.
        offset = offset_of(request)
        link = f'<{request.url.with_query(offset=offset + 100)}>; rel="next"'
        objects = tokens(offset, 100) if offset < 300 else []
        return page(request, objects, total="1000", link=link if offset < 200 else None)

    async with serve(handler) as base:
        async with PullClient(f"{base}{PATH}", token=TOKEN, limit=100) as client:
            with pytest.raises(IncompletePullError, match="300 distinct objects"):
                await all_pages(client)
        async with PullClient(f"{base}{PATH}", token=TOKEN, limit=100, strict=False) as lenient:
            assert len(await all_pages(lenient)) == 4  # the fourth: the probe past the end
    assert lenient.outcome is not None
    assert not lenient.outcome.complete
    assert lenient.outcome.first_total == 1000


async def test_a_wrong_token_is_an_auth_error() -> None:
    async with (
        sandbox(sizes={"tokens": 10}) as (base, _),
        PullClient(f"{base}/ocpi/versions", token="wrong", module="tokens") as client,
    ):
        with pytest.raises(PartnerAuthError):
            await all_pages(client)
