"""Reading the sandbox as a careful client would: follow a Link chain, read raw headers."""

from __future__ import annotations

from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from producer.ocpi.protocol.links import find_next_target
from tests.support import auth_header, get


async def walk_chain(
    base: str, first: str, version: str = "2.2.1"
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Follow Link rel=next from `first`; return every object and every page's headers."""
    objects: list[dict[str, Any]] = []
    pages: list[dict[str, str]] = []
    url: str | None = base + first
    while url is not None:
        status, body, headers = await get(url, auth_header(version))
        assert status == 200, body
        objects.extend(body["data"])
        pages.append(headers)
        target = find_next_target([headers["Link"]] if "Link" in headers else [])
        url = None if target is None else (target if target.startswith("http") else base + target)
    return objects, pages


async def raw_get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    """GET without following redirects: status, body bytes, every header (repeats kept)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, allow_redirects=False) as response,
    ):
        return response.status, await response.read(), response.headers
