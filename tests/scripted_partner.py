"""A partner scripted per test: an HTTP server whose every GET goes to one handler, plus helpers to
answer with OCPI pages. For the hostile and broken behaviours the sandbox does not model."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from sandbox.generator import ObjectFactory, Party

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FACTORY = ObjectFactory("tokens", 1, Party())
BASE_MS = 1_600_000_000_000
PATH = "/ocpi/emsp/2.2.1/tokens"


def tokens(start: int, count: int) -> list[dict[str, Any]]:
    """Valid 2.2.1 tokens start..start+count-1 (one second apart)."""
    return [FACTORY.render(i, "2.2.1", BASE_MS + i * 1000) for i in range(start, start + count)]


def envelope(data: Any, status: int = 1000) -> bytes:
    return orjson.dumps({"data": data, "status_code": status, "timestamp": "2026-01-01T00:00:00Z"})


def page(
    request: web.Request,
    objects: list[dict[str, Any]],
    *,
    total: str | None,
    link: str | None = None,
    limit: str | None = "10",
    content_type: str = "application/json",
) -> web.Response:
    headers = {}
    if total is not None:
        headers["X-Total-Count"] = total
    if limit is not None:
        headers["X-Limit"] = limit
    if link is not None:
        headers["Link"] = link
    return web.Response(body=envelope(objects), headers=headers, content_type=content_type)


def offset_of(request: web.Request) -> int:
    return int(request.query.get("offset", "0"))


class Recorder:
    """Requests a server received (method, path, headers)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []


@contextlib.asynccontextmanager
async def serve(handler: Handler, recorder: Recorder | None = None) -> AsyncIterator[str]:
    """An HTTP server on a free port whose every GET goes to `handler`."""

    async def recording(request: web.Request) -> web.StreamResponse:
        if recorder is not None:
            recorder.requests.append((request.path_qs, dict(request.headers)))
        return await handler(request)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", recording)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


Rewrite = Callable[[web.Request, int, dict[str, str], bytes], web.StreamResponse]


@contextlib.asynccontextmanager
async def relay(upstream: str, rewrite: Rewrite | None = None) -> AsyncIterator[str]:
    """A partner in front of another (the sandbox): every GET is forwarded to `upstream`, and
    the answer (with `Link` targets moved to the relay's own origin) may be rewritten per test."""
    async with aiohttp.ClientSession() as session:
        own: list[str] = []

        async def forward(request: web.Request) -> web.StreamResponse:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
            async with session.get(
                f"{upstream}{request.path_qs}", headers=headers, allow_redirects=False
            ) as answer:
                body = await answer.read()
                kept = {
                    k: v.replace(upstream, own[0])
                    for k, v in answer.headers.items()
                    if k.lower() in ("x-total-count", "x-limit", "link", "retry-after")
                }
                status = answer.status
            if rewrite is not None:
                return rewrite(request, status, kept, body)
            return web.Response(
                status=status, body=body, headers=kept, content_type="application/json"
            )

        async with serve(forward) as base:
            own.append(base)
            yield base
