"""Versions discovery as the sandbox partner answers it: the versions list, version details, and
the redirect a FastAPI partner sends for a URL without its trailing slash."""

from __future__ import annotations

from aiohttp import web

from sandbox.generator import MODULES, format_datetime
from sandbox.links import base_url, foreign_origin
from sandbox.protocol import ROLE_OF_MODULE, OcpiFailure, envelope, json_response
from sandbox.state import STATE_KEY


async def versions(request: web.Request) -> web.Response:
    """GET /ocpi/versions: the versions this partner speaks."""
    state = request.app[STATE_KEY]
    state.authorize(request, None, functional=False)
    base = base_url(request)
    offered = state.config.ocpi_versions
    data = [{"version": v, "url": f"{base}/ocpi/versions/{v}"} for v in offered]
    return json_response(envelope(data, timestamp=format_datetime(state.now_ms())))


async def version_details(request: web.Request) -> web.Response:
    """GET /ocpi/versions/{version}: the module endpoints of one version."""
    state = request.app[STATE_KEY]
    version = request.match_info["version"]
    if version not in state.config.ocpi_versions:
        raise OcpiFailure(404, 3002, f"Unsupported version {version}")
    state.authorize(request, version, functional=False)
    base = base_url(request)
    endpoints: list[dict[str, str]] = []
    for module in MODULES:
        url = f"{base}/ocpi/{ROLE_OF_MODULE[module]}/{version}/{module}"
        if version == "2.1.1":
            endpoints.append({"identifier": module, "url": url})
        else:  # 2.2.1 and 2.3.0: the interface role; the sandbox only sends (GET lists)
            endpoints.append({"identifier": module, "role": "SENDER", "url": url})
    details = {"version": version, "endpoints": endpoints}
    return json_response(envelope(details, timestamp=format_datetime(state.now_ms())))


async def redirect_to_slash(request: web.Request) -> web.Response:
    """GET of an unslashed URL on a FastAPI-style partner: a redirect to the slashed one.

    Starlette answers with an absolute URL on its own origin, the query kept; with
    `redirect_cross_origin` the redirect leads to another origin instead.
    """
    state = request.app[STATE_KEY]
    config = state.config
    state.stats.requests["redirect"] += 1
    if config.redirect_cross_origin:
        origin = foreign_origin(request, config.foreign_origin)
    else:
        origin = base_url(request)
    path, mark, query = request.raw_path.partition("?")
    return web.Response(
        status=config.redirect_status or 307, headers={"Location": f"{origin}{path}/{mark}{query}"}
    )
