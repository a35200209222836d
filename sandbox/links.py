"""The `Link` header of a page, correct or broken the way real OCPI servers break it.

A spec-perfect next link is absolute, keeps the original filters and has `rel="next"`. The
defects below each reproduce one server's mistake (ocpi.md §5.2-5.3 for py-ocpi/extrawest, whose
link is `https://{OCPI_HOST}/ocpi/cpo/{version}/{module}/?{urlencode(filters)}` on Python 3.11):

* `https`: the scheme is `https://` although the server speaks http;
* `wrong-role`: the path has `/cpo/` whatever the module's role, so the eMSP tokens link 404s;
* `enum-path`: `VersionNumber.v_2_2_1/ModuleID.tokens` instead of `2.2.1/tokens` (404);
* `none-filters`: filters written with `str()`: unset ones as `date_from=None`, set ones as
  `2024-01-01 00:00:00+00:00`; the list endpoint then answers an unparseable date with 422 and
  a FastAPI body (see `sandbox.app`);
* `empty-last`: the last page carries `Link:` with an empty value instead of no header;
* `echo-limit`: `X-Limit` repeats the asked limit instead of the server's cap (see `sandbox.app`);
* `cross-origin`: the link leads to another origin (`SandboxConfig.foreign_origin`);
* `unparseable`: the target is not a URL (an unclosed IPv6 bracket);
* `no-rel`: `Link: <url>` with no `rel` parameter, as the old PullClient's test suite sends.

`py-ocpi` turns on the first six together; add `--redirect-slash 307` for the whole FastAPI
partner (its URLs, and so its links, then end in `/`). Scheme, path and filter defects apply to
absolute and relative links; a one-shot hub link keeps its opaque URL.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web
from yarl import URL

from sandbox.config import LinkDefect
from sandbox.protocol import ROLE_OF_MODULE
from sandbox.state import PageQuery, SandboxState


def base_url(request: web.Request) -> str:
    """Scheme, host and port the request reached, as a URL prefix."""
    return f"{request.scheme}://{request.host}"


def foreign_origin(request: web.Request, configured: str | None) -> str:
    """Another origin than the request's: the configured one, else the same host one port up."""
    if configured is not None:
        return configured.rstrip("/")
    own = URL(base_url(request))
    port = own.port or 80
    return str(own.with_port(port + 1 if port < 65535 else port - 1)).rstrip("/")


def module_path(module: str, version: str, *, slash: bool) -> str:
    """The path of a module's list endpoint (with a trailing slash on FastAPI-style servers)."""
    return f"/ocpi/{ROLE_OF_MODULE[module]}/{version}/{module}" + ("/" if slash else "")


def _python_str(value: str | None, value_ms: int | None) -> str:
    # What f"{datetime}" and f"{None}" give: the forms py-ocpi puts into its links.
    if value is None or value_ms is None:
        return "None"
    return str(datetime.fromtimestamp(value_ms / 1000, UTC))


def _query(query: PageQuery, next_offset: int, defects: tuple[LinkDefect, ...]) -> str:
    params: dict[str, str | int] = {}
    # The next link carries the original filters (spec), then offset and limit.
    if "none-filters" in defects:
        params["date_from"] = _python_str(query.date_from, query.date_from_ms)
        params["date_to"] = _python_str(query.date_to, query.date_to_ms)
    else:
        if query.date_from is not None:
            params["date_from"] = query.date_from
        if query.date_to is not None:
            params["date_to"] = query.date_to
    params["offset"] = next_offset
    params["limit"] = query.limit
    return urlencode(params)


def next_link(request: web.Request, state: SandboxState, query: PageQuery, next_offset: int) -> str:
    """The `Link` header value pointing at the page that starts at `next_offset`."""
    config = state.config
    defects = config.link_defects
    if config.link_style == "one-shot":
        token = secrets.token_urlsafe(16)
        state.one_shot[token] = replace(query, offset=next_offset)
        while len(state.one_shot) > config.one_shot_capacity:
            state.one_shot.popitem(last=False)
        target = f"{base_url(request)}/ocpi/hub/page/{token}"
    elif not defects:
        path = module_path(query.module, query.version, slash=config.slashed_urls)
        target = f"{path}?{_query(query, next_offset, defects)}"
        if config.link_style == "absolute":
            target = base_url(request) + target
    else:
        target = _broken_target(request, state, query, next_offset)
    if "no-rel" in defects:
        return f"<{target}>"
    return f'<{target}>; rel="next"'


def _broken_target(
    request: web.Request, state: SandboxState, query: PageQuery, next_offset: int
) -> str:
    config = state.config
    defects = config.link_defects
    role = "cpo" if "wrong-role" in defects else ROLE_OF_MODULE[query.module]
    if "enum-path" in defects:
        version_module = (
            f"VersionNumber.v_{query.version.replace('.', '_')}/ModuleID.{query.module}"
        )
    else:
        version_module = f"{query.version}/{query.module}"
    slash = "/" if config.slashed_urls else ""
    path = f"/ocpi/{role}/{version_module}{slash}?{_query(query, next_offset, defects)}"
    if "unparseable" in defects:
        return f"http://[{request.host}{path}"
    if "cross-origin" in defects:
        return foreign_origin(request, config.foreign_origin) + path
    if "https" in defects:
        return f"https://{request.host}{path}"
    if config.link_style == "relative":
        return path
    return base_url(request) + path
