"""Versions discovery as the sandbox partner answers it: the versions list and version details."""

from __future__ import annotations

from aiohttp import web

from sandbox.generator import MODULES, VERSIONS
from sandbox.links import base_url
from sandbox.protocol import ROLE_OF_MODULE, OcpiFailure, envelope, json_response
from sandbox.state import STATE_KEY


async def versions(request: web.Request) -> web.Response:
    """GET /ocpi/versions: the versions this partner speaks."""
    state = request.app[STATE_KEY]
    state.authorize(request, None)
    base = base_url(request)
    data = [{"version": v, "url": f"{base}/ocpi/versions/{v}"} for v in VERSIONS]
    return json_response(envelope(data))


async def version_details(request: web.Request) -> web.Response:
    """GET /ocpi/versions/{version}: the module endpoints of one version."""
    state = request.app[STATE_KEY]
    version = request.match_info["version"]
    if version not in VERSIONS:
        raise OcpiFailure(404, 3002, f"Unsupported version {version}")
    state.authorize(request, version)
    base = base_url(request)
    endpoints: list[dict[str, str]] = []
    for module in MODULES:
        url = f"{base}/ocpi/{ROLE_OF_MODULE[module]}/{version}/{module}"
        if version == "2.1.1":
            endpoints.append({"identifier": module, "url": url})
        else:
            endpoints.append({"identifier": module, "role": "SENDER", "url": url})
    return json_response(envelope({"version": version, "endpoints": endpoints}))
