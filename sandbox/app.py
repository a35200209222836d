"""The sandbox OCPI partner as an aiohttp application.

It serves the versions endpoint, version details and the GET list endpoints of every module,
paginated exactly as the spec says, with switchable partner faults. Test hooks live under
`/_sandbox/` (sandbox/hooks.py): request statistics, the ground truth at an instant, the changes
since an instant, and explicit mutations.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from sandbox.capacity import capacity_middleware
from sandbox.churn import churn_context
from sandbox.config import SandboxConfig
from sandbox.dataset import Entry
from sandbox.discovery import redirect_to_slash, version_details, versions
from sandbox.faults import FaultKind, choose_fault, latency_seconds
from sandbox.generator import MODULES, format_datetime, mix64
from sandbox.hooks import add_hook_routes
from sandbox.links import next_link
from sandbox.protocol import (
    ROLE_OF_MODULE,
    OcpiFailure,
    PlainFailure,
    echo_ids,
    envelope,
    fastapi_invalid_query,
    json_response,
    parse_ocpi_datetime,
)
from sandbox.state import STATE_KEY, PageQuery, SandboxState

__all__ = ["SandboxState", "build_app", "running_sandbox", "serve_forever"]


# -- list endpoints --------------------------------------------------------------------------


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OcpiFailure(400, 2001, f"Invalid {name}: {raw!r}") from None
    if value < 0:
        raise OcpiFailure(400, 2001, f"Invalid {name}: {raw!r}")
    return value


def _date_param(request: web.Request, name: str, fastapi: bool) -> tuple[str | None, int | None]:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None, None
    try:
        return raw, parse_ocpi_datetime(raw)
    except ValueError:
        if fastapi:  # a FastAPI partner's own validation answers first: 422, not OCPI
            raise fastapi_invalid_query(name, raw) from None
        raise OcpiFailure(400, 2001, f"Invalid {name}: {raw!r}") from None


def _parse_query(request: web.Request, state: SandboxState, module: str, version: str) -> PageQuery:
    if module not in MODULES or version not in state.config.ocpi_versions:
        raise OcpiFailure(404, 2000, f"No such endpoint: {request.path}")
    if request.match_info.get("role", ROLE_OF_MODULE[module]) != ROLE_OF_MODULE[module]:
        raise OcpiFailure(404, 2000, f"No such endpoint: {request.path}")
    fastapi = "none-filters" in state.config.link_defects
    date_from, date_from_ms = _date_param(request, "date_from", fastapi)
    date_to, date_to_ms = _date_param(request, "date_to", fastapi)
    if module == "sessions" and date_from is None:
        raise OcpiFailure(400, 2001, "date_from is required for the Sessions list")
    requested = _int_param(request, "limit", state.config.effective_default_limit)
    shift_ms = state.config.date_filter_shift_s * 1000
    if shift_ms:
        date_from_ms = None if date_from_ms is None else date_from_ms + shift_ms
        date_to_ms = None if date_to_ms is None else date_to_ms + shift_ms
    return PageQuery(
        module=module,
        version=version,
        offset=_int_param(request, "offset", 0),
        limit=min(requested, state.config.max_limit),
        date_from=date_from,
        date_to=date_to,
        date_from_ms=date_from_ms,
        date_to_ms=date_to_ms,
        requested_limit=requested,
    )


def _render_page(
    state: SandboxState, query: PageQuery, entries: list[Entry]
) -> list[dict[str, Any]]:
    dataset = state.datasets[query.module]
    render = dataset.factory.render
    invalid_kind = dataset.invalid_kind
    return [
        render(e.index, query.version, e.last_updated_ms, e.revision, invalid_kind(e.index))
        for e in entries
    ]


def _page_body(state: SandboxState, query: PageQuery, entries: list[Entry]) -> bytes:
    objects = _render_page(state, query, entries)
    now = format_datetime(state.now_ms())
    if not state.config.dialects:
        return envelope(objects, timestamp=now)
    writer = state.dialect_writer(query.module, query.version)
    for entry, obj in zip(entries, objects, strict=True):
        writer.write(obj, entry.index)
    return envelope(objects, timestamp=writer.timestamp(now))


def _reordered(state: SandboxState, query: PageQuery, total: int) -> list[Entry]:
    """The whole filtered list in the order `--sort-by`/`--unordered` give it."""
    dataset = state.datasets[query.module]
    entries = dataset.page(0, total, query.date_from_ms, query.date_to_ms)
    config = state.config
    if config.unordered:
        state.order_rng.shuffle(entries)  # a new order for every request
    elif config.sort_by == "id":
        entries.sort(key=lambda e: dataset.factory.object_id(e.index))
    elif config.sort_by == "none":
        entries.sort(key=lambda e: mix64(e.index ^ config.seed))
    return entries


async def _serve_page(
    request: web.Request, state: SandboxState, query: PageQuery
) -> web.StreamResponse:
    config = state.config
    dataset = state.datasets[query.module]
    # A partner that ignores offset serves the first page, whatever was asked (pitfall).
    served_offset = 0 if config.ignore_offset is not None else query.offset
    total = dataset.count(query.date_from_ms, query.date_to_ms)
    if config.unordered or config.sort_by != "last_updated":
        entries = _reordered(state, query, total)[served_offset : served_offset + query.limit]
    else:
        entries = dataset.page(served_offset, query.limit, query.date_from_ms, query.date_to_ms)
    body = _page_body(state, query, entries)
    headers = echo_ids(request)
    defects = config.link_defects
    # Without paging headers the list is only sliced by offset/limit: nothing says its length.
    if not config.no_paging_headers:
        headers["X-Limit"] = str(query.requested_limit if "echo-limit" in defects else query.limit)
    if config.no_paging_headers:
        pass
    elif config.broken_total:
        headers["X-Total-Count"] = str(len(entries))
    else:
        headers["X-Total-Count"] = str(total)
        # The next offset is the one asked plus what was served, as if offset had been honoured.
        next_offset = query.offset + len(entries)
        if entries and next_offset < total and config.ignore_offset != "without-link":
            headers["Link"] = next_link(request, state, query, next_offset)
        elif "empty-last" in defects:
            headers["Link"] = ""
    if config.rate_limit is not None and config.rate_limit_headers:
        headers.update(state.rate_limit_headers(time.monotonic()))
    state.stats.objects_served += len(entries)
    state.stats.objects_served_by_module[query.module] += len(entries)
    state.stats.pages_served += 1
    state.mutate_after_serving(query.module, len(entries))
    return json_response(body, headers=headers)


async def _apply_fault(
    request: web.Request, state: SandboxState, fault: FaultKind | None
) -> web.StreamResponse | None:
    """Answer with the fault's response, or None when the request is to be served normally."""
    config = state.config
    if fault is None:
        return None
    state.stats.faults[fault] += 1
    if fault == "error":
        status = state.fault_rng.choice((500, 502, 503))
        return web.Response(
            status=status,
            text=f"<html><body><h1>{status}</h1>upstream trouble</body></html>",
            content_type="text/html",
        )
    if fault == "throttle":
        headers: dict[str, str] = {}
        if config.throttle_sends_retry_after:
            if state.stats.faults[fault] % 2:
                headers["Retry-After"] = str(config.retry_after_seconds)
            else:
                # HTTP-date has whole seconds only, so add one to not ask for less than intended.
                headers["Retry-After"] = formatdate(
                    time.time() + config.retry_after_seconds + 1, usegmt=True
                )
        return json_response(envelope(None, 2000, "Too many requests"), 429, headers)
    if fault == "envelope_error":
        return json_response(envelope([], 3000, "Generic server error"))
    return None


async def _reset_midway(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Send the headers and half the body, then drop the connection."""
    body = response.body
    assert isinstance(body, bytes)
    stream = web.StreamResponse(status=200, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        transport.abort()
    return stream


async def _serve_with_faults(
    request: web.Request, state: SandboxState, query: PageQuery, one_shot_token: str | None
) -> web.StreamResponse:
    stats = state.stats
    now = time.monotonic()
    stats.page_request_times.append(now)
    fault = choose_fault(state.config.faults, state.fault_rng)
    if fault is None and state.over_rate_limit(now):
        fault = "throttle"
    delay = latency_seconds(state.config.latency_ms, state.fault_rng)
    if delay:
        await asyncio.sleep(delay)
    early = await _apply_fault(request, state, fault)
    if early is not None and fault != "envelope_error":
        return early  # the hub keeps a one-shot page when the partner answered with an error
    if one_shot_token is not None:
        state.one_shot.pop(one_shot_token, None)
    if early is not None:
        return early
    if fault == "stall":
        await asyncio.sleep(state.config.stall_seconds)
    response = await _serve_page(request, state, query)
    if fault == "reset":
        assert isinstance(response, web.Response)
        return await _reset_midway(request, response)
    return response


async def list_objects(request: web.Request) -> web.StreamResponse:
    """GET /ocpi/{role}/{version}/{module}: one page of a module's objects."""
    state = request.app[STATE_KEY]
    version = request.match_info["version"]
    module = request.match_info["module"]
    state.stats.requests["list"] += 1
    state.authorize(request, version)
    query = _parse_query(request, state, module, version)
    return await _serve_with_faults(request, state, query, None)


async def one_shot_page(request: web.Request) -> web.StreamResponse:
    """GET /ocpi/hub/page/{token}: a hub's opaque next link, valid for one fetch only."""
    state = request.app[STATE_KEY]
    state.stats.requests["one_shot"] += 1
    token = request.match_info["token"]
    query = state.one_shot.get(token)
    if query is None:
        raise OcpiFailure(404, 2003, "Proxied resource not found")
    state.authorize(request, query.version)
    return await _serve_with_faults(request, state, query, token)


# -- application -----------------------------------------------------------------------------


@web.middleware
async def ocpi_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn OcpiFailure (and PlainFailure) into an error answer; keep in-flight counters."""
    stats = request.app[STATE_KEY].stats
    stats.in_flight += 1
    stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
    try:
        response: web.StreamResponse = await handler(request)
    except OcpiFailure as failure:
        response = json_response(
            envelope(None, failure.status_code, failure.message),
            failure.http_status,
            echo_ids(request),
        )
    except PlainFailure as failure:
        response = json_response(orjson.dumps(failure.body), failure.http_status)
    finally:
        stats.in_flight -= 1
    stats.statuses[response.status] += 1
    return response


async def _skewed_date(request: web.Request, response: web.StreamResponse) -> None:
    """The HTTP Date of a partner whose clock is off (`--clock-skew-s`)."""
    response.headers["Date"] = formatdate(request.app[STATE_KEY].now_ms() / 1000, usegmt=True)


def build_app(config: SandboxConfig) -> web.Application:
    """The sandbox as an aiohttp application (also used in-process by tests)."""
    state = SandboxState(config)
    middlewares: list[Middleware] = [ocpi_errors]
    if state.capacity is not None:
        # Inside ocpi_errors, so its 429s are counted with every other status.
        middlewares.append(capacity_middleware(state.capacity, config.retry_after_seconds))
    app = web.Application(middlewares=middlewares)
    app[STATE_KEY] = state
    # FastAPI-style partners serve "…/tokens/" and redirect "…/tokens" (which they advertise).
    slash = "/" if config.slashed_urls else ""
    app.router.add_get("/ocpi/versions" + slash, versions)
    app.router.add_get("/ocpi/versions/{version}" + slash, version_details)
    app.router.add_get("/ocpi/hub/page/{token}", one_shot_page)
    app.router.add_get("/ocpi/{role}/{version}/{module}" + slash, list_objects)
    if slash:
        for path in (
            "/ocpi/versions",
            "/ocpi/versions/{version}",
            "/ocpi/{role}/{version}/{module}",
        ):
            app.router.add_get(path, redirect_to_slash)
    add_hook_routes(app)
    if config.clock_skew_s:
        app.on_response_prepare.append(_skewed_date)
    if config.mutations_per_s > 0:
        app.cleanup_ctx.append(churn_context)
    return app


@contextlib.asynccontextmanager
async def running_sandbox(config: SandboxConfig) -> AsyncIterator[tuple[str, SandboxState]]:
    """Serve the sandbox on config.host:config.port (0 = a free port); yield its base URL."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    tls = None
    if config.tls_cert is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(config.tls_cert, config.tls_key)
        except ssl.SSLError as error:
            raise ValueError(f"cannot load the TLS certificate or key: {error.reason}") from None
    site = web.TCPSite(runner, config.host, config.port, ssl_context=tls)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else config.port
    try:
        scheme = "http" if tls is None else "https"
        yield f"{scheme}://{config.host}:{port}", app[STATE_KEY]
    finally:
        await runner.cleanup()


async def serve_forever(config: SandboxConfig) -> None:
    """Run until SIGTERM or SIGINT, printing the base URL first (for `ocpi-puller sandbox`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_sandbox(config) as (base_url, state):
        sizes = ", ".join(f"{m}={n}" for m, n in config.sizes.items() if n)
        print(f"sandbox OCPI partner at {base_url}/ocpi/versions ({sizes})", flush=True)
        await stop.wait()
        print(
            "sandbox stopping: " + orjson.dumps(state.report()).decode(),
            file=sys.stderr,
            flush=True,
        )
