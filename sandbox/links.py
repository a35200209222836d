"""The `Link: <…>; rel="next"` header the sandbox sends with a page that is not the last."""

from __future__ import annotations

import secrets
from dataclasses import replace
from urllib.parse import urlencode

from aiohttp import web

from sandbox.protocol import ROLE_OF_MODULE
from sandbox.state import PageQuery, SandboxState


def base_url(request: web.Request) -> str:
    """Scheme, host and port the request reached, as a URL prefix."""
    return f"{request.scheme}://{request.host}"


def next_link(request: web.Request, state: SandboxState, query: PageQuery, next_offset: int) -> str:
    """The `Link` header value pointing at the page that starts at `next_offset`."""
    params: dict[str, str | int] = {}
    # The next link carries the original filters (spec), then offset and limit.
    if query.date_from is not None:
        params["date_from"] = query.date_from
    if query.date_to is not None:
        params["date_to"] = query.date_to
    params["offset"] = next_offset
    params["limit"] = query.limit
    style = state.config.link_style
    if style == "one-shot":
        token = secrets.token_urlsafe(16)
        state.one_shot[token] = replace(query, offset=next_offset)
        while len(state.one_shot) > state.config.one_shot_capacity:
            state.one_shot.popitem(last=False)
        return f'<{base_url(request)}/ocpi/hub/page/{token}>; rel="next"'
    path = (
        f"/ocpi/{ROLE_OF_MODULE[query.module]}/{query.version}/{query.module}?{urlencode(params)}"
    )
    if style == "relative":
        return f'<{path}>; rel="next"'
    return f'<{base_url(request)}{path}>; rel="next"'
