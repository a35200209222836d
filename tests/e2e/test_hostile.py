"""Hostile or broken partners: each input has a defined outcome (refusal, dead letter, clear
error), never a crash, a hang or a loss of what was already pulled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.scripted_partner import (
    PATH,
    Handler,
    Recorder,
    offset_of,
    page,
    serve,
    tokens,
)
from tests.support import keys, pull, records


async def run(base: str, bootstrap: str, prefix: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "url": f"{base}{PATH}",
        "module": None,
        "request_timeout_s": 1.0,
        "max_attempts": 3,
        "limit": 10,
    }
    values.update(overrides)
    return await pull(base, bootstrap, prefix, **values)


def paged(
    total: int, *, link_for: Callable[[web.Request, int], str | None] | None = None
) -> Handler:
    """A well-behaved list of `total` tokens, 10 per page, with an overridable next link."""

    async def handler(request: web.Request) -> web.StreamResponse:
        offset, limit = offset_of(request), min(10, int(request.query.get("limit", "10")))
        objects = tokens(offset, max(0, min(limit, total - offset)))
        nxt = offset + len(objects)
        link = None
        if objects and nxt < total:
            following = request.url.with_query({**request.query, "offset": str(nxt)})
            link = link_for(request, nxt) if link_for else f'<{following}>; rel="next"'
        return page(request, objects, total=str(total), link=link, limit=str(limit))

    return handler


@pytest.mark.parametrize(
    "target",
    [
        "http://{other}/steal",  # another origin
        "http://user:pw@{self}/ocpi/emsp/2.2.1/tokens?offset=10",  # user info
        "https://{self}/ocpi/emsp/2.2.1/tokens?offset=10",  # scheme change
        "ftp://{self}/tokens",
        "file:///etc/passwd",
        "http://2130706433:{port}/ocpi/emsp/2.2.1/tokens",  # decimal IP literal of 127.0.0.1
        "http://[::ffff:127.0.0.1]:{port}/ocpi/emsp/2.2.1/tokens",
        "//{other}/protocol-relative",
        "http://{self}@{other}/userinfo-trick",
    ],
)
@pytest.mark.parametrize("repair", ["auto", "off"])
async def test_next_link_to_elsewhere_is_refused_and_gets_no_token(
    bootstrap: str, prefix: str, target: str, repair: str
) -> None:
    thief = Recorder()
    async with serve(paged(30), thief) as other_base:
        other = other_base.removeprefix("http://")
        holder: dict[str, str] = {}

        def hostile_link(request: web.Request, nxt: int) -> str:
            me = holder["self"]
            port = me.rsplit(":", 1)[1]
            return f'<{target.format(other=other, self=me, port=port)}>; rel="next"'

        async with serve(paged(30, link_for=hostile_link)) as base:
            holder["self"] = base.removeprefix("http://")
            result = await run(base, bootstrap, prefix, link_repair=repair)
    summary = result.summaries[0]
    assert thief.requests == []  # nothing, let alone the token, reached the other server
    if repair == "auto":
        # Repaired: the partner honours offset on its own endpoint, so it is read to the end.
        assert result.exit_code == 0, summary
        assert summary.link_repairs == 2
        assert any(w.startswith("next_link_repaired") for w in summary.warnings)
        assert len(set(await keys(bootstrap, f"{prefix}.tokens"))) == 30
        return
    assert result.exit_code == 5
    assert summary.error_kind == "unsafe_link"
    assert "refused" in (summary.error or "")
    # The first page, fetched before the bad link was seen, is in Kafka all the same.
    assert len(await keys(bootstrap, f"{prefix}.tokens")) == 10


async def test_link_that_repeats_itself_ends_as_incomplete_not_a_hang(
    bootstrap: str, prefix: str
) -> None:
    def loop(request: web.Request, nxt: int) -> str:
        return f'<{request.url.with_query(opaque="same")}>; rel="next"'

    async with serve(paged(100, link_for=loop)) as base:
        result = await asyncio.wait_for(run(base, bootstrap, prefix), 30)
    summary = result.summaries[0]
    assert result.exit_code == 5
    assert not summary.complete
    assert any("repeated_link" in w for w in summary.warnings)


async def test_ping_pong_between_two_links_is_detected(bootstrap: str, prefix: str) -> None:
    def ping_pong(request: web.Request, nxt: int) -> str:
        side = "b" if request.query.get("opaque") == "a" else "a"
        return f'<{request.url.with_query(opaque=side)}>; rel="next"'

    async with serve(paged(100, link_for=ping_pong)) as base:
        result = await asyncio.wait_for(run(base, bootstrap, prefix), 30)
    assert result.exit_code == 5
    assert any("repeated_link" in w for w in result.summaries[0].warnings)


async def test_empty_pages_with_a_next_link_forever(bootstrap: str, prefix: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        offset = offset_of(request)
        objects = tokens(0, 10) if offset == 0 and request.query.get("limit") != "1" else []
        nxt = request.url.with_query({**request.query, "offset": str(offset + 10)})
        return page(request, objects, total="1000", link=f'<{nxt}>; rel="next"')

    async with serve(handler) as base:
        result = await asyncio.wait_for(run(base, bootstrap, prefix), 30)
    summary = result.summaries[0]
    assert result.exit_code == 5
    assert not summary.complete
    assert any("empty_pages_with_link" in w for w in summary.warnings)
    assert len(await keys(bootstrap, f"{prefix}.tokens")) == 10


async def test_page_larger_than_the_byte_limit(bootstrap: str, prefix: str) -> None:
    async with serve(paged(30)) as base:
        result = await run(base, bootstrap, prefix, max_page_bytes=2000)
    summary = result.summaries[0]
    assert result.exit_code == 5
    assert summary.error_kind == "partner_protocol"
    assert "exceeds the limit of 2000 bytes" in (summary.error or "")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        (b"\xff\xfe{\x00\x00", "application/json"),  # invalid UTF-8
        (b'{"data": [' * 5000 + b"]" * 5000 + b"}", "application/json"),  # deeply nested
        (b'{"data": [], "status_code": "1000"}', "application/json"),  # not an int status
        (b'{"data": {"not": "a list"}, "status_code": 1000}', "application/json"),
        (b"", "application/json"),
    ],
)
async def test_bodies_that_are_not_an_ocpi_list_fail_clearly(
    bootstrap: str, prefix: str, body: bytes, content_type: str
) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        return web.Response(body=body, content_type=content_type, headers={"X-Total-Count": "5"})

    async with serve(handler) as base:
        result = await run(base, bootstrap, prefix)
    summary = result.summaries[0]
    assert result.exit_code == 5
    assert summary.error_kind == "partner_protocol"
    assert calls == 3  # retried a bounded number of times (a proxy's page may be transient)
    assert "\n" not in (summary.error or "")


async def test_wrong_content_type_with_a_valid_envelope_is_accepted(
    bootstrap: str, prefix: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        objects = tokens(0, 5) if request.query.get("limit") != "1" else tokens(0, 1)
        return page(request, objects, total="5", content_type="text/plain")

    async with serve(handler) as base:
        result = await run(base, bootstrap, prefix)
    assert result.exit_code == 0
    assert len(await keys(bootstrap, f"{prefix}.tokens")) == 5


@pytest.mark.parametrize("header", ["-5", "99999999999999999999", "lots", "1e3", ""])
async def test_nonsense_count_headers_are_ignored(bootstrap: str, prefix: str, header: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = await paged(25)(request)
        response.headers["X-Total-Count"] = header
        response.headers["X-Limit"] = header
        return response

    async with serve(handler) as base:
        result = await run(base, bootstrap, prefix)
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.objects_emitted == 25
    assert "no_total_count" in " ".join(summary.warnings) or summary.total_reported in (0, None)


async def test_object_nested_deep_inside_a_valid_page_is_dead_lettered_or_kept(
    bootstrap: str, prefix: str
) -> None:
    nested: Any = "bottom"
    for _ in range(200):
        nested = {"n": nested}

    async def handler(request: web.Request) -> web.StreamResponse:
        objects = tokens(0, 5)
        objects[2]["extension"] = nested
        return page(request, objects[: 1 if request.query.get("limit") == "1" else 5], total="5")

    async with serve(handler) as base:
        result = await run(base, bootstrap, prefix)
    summary = result.summaries[0]
    assert result.exit_code == 0
    assert summary.objects_emitted + summary.dead_lettered == 5


async def test_duplicate_ids_within_a_page(bootstrap: str, prefix: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        objects = tokens(0, 4)
        changed = dict(objects[1], valid=not objects[1]["valid"])
        objects += [objects[0], changed]  # same key twice: once identical, once changed
        return page(request, objects[: 1 if request.query.get("limit") == "1" else 6], total="6")

    async with serve(handler) as base:
        result = await run(base, bootstrap, prefix)
    summary = result.summaries[0]
    produced = await records(bootstrap, f"{prefix}.tokens")
    assert summary.duplicate_keys == 2
    assert len(produced) == 5  # the identical repeat is not produced again; the change is
    last = {r.key: orjson.loads(r.value) for r in produced}
    assert len(last) == 4


async def test_slow_loris_body_is_bounded_by_the_request_timeout(
    bootstrap: str, prefix: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(600):
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    async with serve(handler) as base:
        result = await asyncio.wait_for(run(base, bootstrap, prefix, max_attempts=2), 30)
    summary = result.summaries[0]
    assert result.exit_code == 4
    assert summary.error_kind == "partner_unavailable"
    assert "timeout" in (summary.error or "")
