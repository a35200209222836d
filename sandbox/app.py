"""The sandbox OCPI partner as an aiohttp application.

It serves the versions endpoint, version details and the GET list endpoints of every module in
OCPI 2.1.1 and 2.2.1, paginated exactly as the spec says, with switchable partner faults. Test
hooks live under `/_sandbox/`: request statistics, the ground truth at an instant, the changes since
an instant, and explicit mutations.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import secrets
import signal
import ssl
import sys
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, Final
from urllib.parse import urlencode

import orjson
from aiohttp import web

from sandbox.config import SandboxConfig
from sandbox.dataset import Dataset, DatasetSpec, Entry, Mutation
from sandbox.faults import FaultKind, choose_fault, latency_seconds
from sandbox.generator import MODULES, VERSIONS, Module, format_datetime

ROLE_OF_MODULE: Final[dict[str, str]] = {
    "tokens": "emsp",
    "locations": "cpo",
    "tariffs": "cpo",
    "sessions": "cpo",
    "cdrs": "cpo",
}


def now_ms() -> int:
    """Wall-clock epoch milliseconds (the partner's clock)."""
    return time.time_ns() // 1_000_000


def _timestamp() -> str:
    return format_datetime(now_ms())


def parse_ocpi_datetime(value: str) -> int:
    """Epoch ms of an OCPI DateTime query value; no zone means UTC (2.2.1 types)."""
    # Some clients do not URL-encode "+01:00", which then arrives as a space (P4).
    text = value.strip().replace(" ", "+")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A list request as the partner understood it."""

    module: Module
    version: str
    offset: int
    limit: int
    date_from: str | None
    date_to: str | None
    date_from_ms: int | None
    date_to_ms: int | None


class OcpiFailure(Exception):
    """An OCPI error answer: HTTP status plus the OCPI status code and message."""

    def __init__(self, http_status: int, status_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code
        self.message = message


class SandboxStats:
    """Request counters, readable over HTTP (`/_sandbox/stats`) and from Python."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.objects_served = 0
        self.pages_served = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.page_request_times: deque[float] = deque(maxlen=200_000)
        self.authorization_headers: Counter[str] = Counter()

    def max_requests_per_second(self) -> int:
        """The most page requests seen in any sliding one-second interval."""
        times = list(self.page_request_times)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def as_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able values."""
        return {
            "requests": dict(self.requests),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "faults": dict(self.faults),
            "objects_served": self.objects_served,
            "pages_served": self.pages_served,
            "max_in_flight": self.max_in_flight,
            "max_requests_per_second": self.max_requests_per_second(),
        }


class SandboxState:
    """Datasets, one-shot page links, the fault stream and counters of one running sandbox."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.datasets: dict[str, Dataset] = {
            module: Dataset(
                DatasetSpec(
                    module=module,
                    size=config.sizes.get(module, 0),
                    seed=config.seed,
                    party=config.party,
                    history_start_ms=config.history_start_ms,
                    spacing_ms=config.spacing_ms,
                    invalid_rate=config.invalid_rate,
                )
            )
            for module in MODULES
        }
        for dataset in self.datasets.values():
            if dataset.history_end_ms >= now_ms():
                raise ValueError(
                    f"{dataset.spec.module}: {dataset.spec.size} objects at {config.spacing_ms} ms "
                    "spacing reach into the future; lower --spacing-ms"
                )
        self.fault_rng = random.Random(config.seed)
        self.mutation_rng = random.Random(config.seed + 1)
        self.mutation_credit: dict[str, float] = {}
        self.one_shot: OrderedDict[str, PageQuery] = OrderedDict()
        self._recent_requests: deque[float] = deque()
        self.stats = SandboxStats()

    def over_rate_limit(self, now: float) -> bool:
        """Whether this request exceeds the partner's own rate limit (requests in the last s)."""
        limit = self.config.rate_limit
        if limit is None:
            return False
        recent = self._recent_requests
        recent.append(now)
        while recent and now - recent[0] > 1.0:
            recent.popleft()
        return len(recent) > limit

    def mutate_after_serving(self, module: str, served: int) -> None:
        """Apply `mutation_rate` mutations per object served to the module being served."""
        rate = self.config.mutation_rate
        if rate <= 0.0:
            return
        credit = self.mutation_credit.get(module, 0.0) + rate * served
        dataset = self.datasets[module]
        while credit >= 1.0:
            credit -= 1.0
            dataset.mutate_randomly(self.mutation_rng, now_ms())
        self.mutation_credit[module] = credit


STATE_KEY: Final = web.AppKey("sandbox_state", SandboxState)


# -- envelope and errors ---------------------------------------------------------------------


def envelope(data: Any, status_code: int = 1000, message: str = "Success") -> bytes:
    """An OCPI response body."""
    return orjson.dumps(
        {
            "data": data,
            "status_code": status_code,
            "status_message": message,
            "timestamp": _timestamp(),
        }
    )


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with the given pre-serialised body."""
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _echo_ids(request: web.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in ("X-Request-ID", "X-Correlation-ID"):
        value = request.headers.get(name)
        if value is not None:
            headers[name] = value
    return headers


def _check_auth(request: web.Request, state: SandboxState, version: str | None) -> None:
    header = request.headers.get("Authorization", "")
    state.stats.authorization_headers[header[:6]] += 1
    if not header.startswith("Token "):
        raise OcpiFailure(401, 2000, "Missing or malformed Authorization header")
    presented = header[len("Token ") :]
    plain = state.config.token_value
    encoded = base64.b64encode(plain.encode()).decode()
    mode = state.config.token_encoding
    if mode == "version":
        mode = "any" if version is None else ("plain" if version == "2.1.1" else "base64")
    accepted = {"plain": {plain}, "base64": {encoded}, "any": {plain, encoded}}[mode]
    if presented not in accepted:
        raise OcpiFailure(401, 2000, "Unknown or wrongly encoded credentials token")


# -- discovery -------------------------------------------------------------------------------


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def versions(request: web.Request) -> web.Response:
    """GET /ocpi/versions: the versions this partner speaks."""
    state = request.app[STATE_KEY]
    _check_auth(request, state, None)
    base = _base_url(request)
    data = [{"version": v, "url": f"{base}/ocpi/versions/{v}"} for v in VERSIONS]
    return json_response(envelope(data))


async def version_details(request: web.Request) -> web.Response:
    """GET /ocpi/versions/{version}: the module endpoints of one version."""
    state = request.app[STATE_KEY]
    version = request.match_info["version"]
    if version not in VERSIONS:
        raise OcpiFailure(404, 3002, f"Unsupported version {version}")
    _check_auth(request, state, version)
    base = _base_url(request)
    endpoints: list[dict[str, str]] = []
    for module in MODULES:
        url = f"{base}/ocpi/{ROLE_OF_MODULE[module]}/{version}/{module}"
        if version == "2.1.1":
            endpoints.append({"identifier": module, "url": url})
        else:
            endpoints.append({"identifier": module, "role": "SENDER", "url": url})
    return json_response(envelope({"version": version, "endpoints": endpoints}))


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


def _date_param(request: web.Request, name: str) -> tuple[str | None, int | None]:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None, None
    try:
        return raw, parse_ocpi_datetime(raw)
    except ValueError:
        raise OcpiFailure(400, 2001, f"Invalid {name}: {raw!r}") from None


def _parse_query(request: web.Request, state: SandboxState, module: str, version: str) -> PageQuery:
    if module not in MODULES or version not in VERSIONS:
        raise OcpiFailure(404, 2000, f"No such endpoint: {request.path}")
    if request.match_info.get("role", ROLE_OF_MODULE[module]) != ROLE_OF_MODULE[module]:
        raise OcpiFailure(404, 2000, f"No such endpoint: {request.path}")
    date_from, date_from_ms = _date_param(request, "date_from")
    date_to, date_to_ms = _date_param(request, "date_to")
    if module == "sessions" and date_from is None:
        raise OcpiFailure(400, 2001, "date_from is required for the Sessions list")
    requested = _int_param(request, "limit", state.config.effective_default_limit)
    return PageQuery(
        module=module,
        version=version,
        offset=_int_param(request, "offset", 0),
        limit=min(requested, state.config.max_limit),
        date_from=date_from,
        date_to=date_to,
        date_from_ms=date_from_ms,
        date_to_ms=date_to_ms,
    )


def _next_link(
    request: web.Request, state: SandboxState, query: PageQuery, next_offset: int
) -> str:
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
        state.one_shot[token] = PageQuery(
            query.module,
            query.version,
            next_offset,
            query.limit,
            query.date_from,
            query.date_to,
            query.date_from_ms,
            query.date_to_ms,
        )
        while len(state.one_shot) > state.config.one_shot_capacity:
            state.one_shot.popitem(last=False)
        return f'<{_base_url(request)}/ocpi/hub/page/{token}>; rel="next"'
    path = (
        f"/ocpi/{ROLE_OF_MODULE[query.module]}/{query.version}/{query.module}?{urlencode(params)}"
    )
    if style == "relative":
        return f'<{path}>; rel="next"'
    return f'<{_base_url(request)}{path}>; rel="next"'


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


async def _serve_page(
    request: web.Request, state: SandboxState, query: PageQuery
) -> web.StreamResponse:
    dataset = state.datasets[query.module]
    entries = dataset.page(query.offset, query.limit, query.date_from_ms, query.date_to_ms)
    total = dataset.count(query.date_from_ms, query.date_to_ms)
    body = envelope(_render_page(state, query, entries))
    headers = _echo_ids(request)
    headers["X-Limit"] = str(query.limit)
    if state.config.broken_total:
        headers["X-Total-Count"] = str(len(entries))
    else:
        headers["X-Total-Count"] = str(total)
        next_offset = query.offset + len(entries)
        if entries and next_offset < total:
            headers["Link"] = _next_link(request, state, query, next_offset)
    state.stats.objects_served += len(entries)
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
    _check_auth(request, state, version)
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
    _check_auth(request, state, query.version)
    return await _serve_with_faults(request, state, query, token)


# -- test hooks ------------------------------------------------------------------------------


async def stats_endpoint(request: web.Request) -> web.Response:
    """GET /_sandbox/stats: request counters."""
    return json_response(orjson.dumps(request.app[STATE_KEY].stats.as_dict()))


def _dataset(request: web.Request) -> Dataset:
    module = request.query.get("module", "tokens")
    datasets = request.app[STATE_KEY].datasets
    if module not in datasets:
        raise OcpiFailure(400, 2001, f"Unknown module {module!r}")
    return datasets[module]


def identity_record(
    dataset: Dataset, index: int, last_updated_ms: int | None = None
) -> dict[str, Any]:
    """The key-making fields of object *index*, as JSON-able values."""
    ident = dataset.factory.identity(index)
    record: dict[str, Any] = {
        "index": index,
        "country_code": ident.country_code,
        "party_id": ident.party_id,
        "id": ident.object_id,
    }
    if ident.token_type is not None:
        record["type"] = ident.token_type
    if last_updated_ms is not None:
        record["last_updated"] = format_datetime(last_updated_ms)
    return record


async def truth_endpoint(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/truth?module=&at=: NDJSON of every object that existed at the instant."""
    dataset = _dataset(request)
    at_raw = request.query.get("at")
    at_ms = now_ms() if not at_raw else parse_ocpi_datetime(at_raw)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    chunk: list[bytes] = []
    for entry in dataset.state_at(at_ms):
        record = identity_record(dataset, entry.index, entry.last_updated_ms)
        record["invalid"] = entry.invalid
        chunk.append(orjson.dumps(record) + b"\n")
        if len(chunk) >= 5000:
            await response.write(b"".join(chunk))
            chunk.clear()
    await response.write(b"".join(chunk))
    await response.write_eof()
    return response


async def changes_endpoint(request: web.Request) -> web.Response:
    """GET /_sandbox/changes?module=&since=: objects changed at or after the instant."""
    dataset = _dataset(request)
    since_ms = parse_ocpi_datetime(request.query.get("since", "1970-01-01T00:00:00Z"))
    indices = sorted(dataset.changed_since(since_ms))
    return json_response(orjson.dumps([identity_record(dataset, i) for i in indices]))


async def mutate_endpoint(request: web.Request) -> web.Response:
    """POST /_sandbox/mutate {module, updates, deletes, inserts, indices?}: change data now."""
    state = request.app[STATE_KEY]
    spec = await request.json()
    dataset = state.datasets.get(spec.get("module", ""))
    if dataset is None:
        raise OcpiFailure(400, 2001, "Unknown module")
    rng = random.Random(spec.get("seed", 0))
    done: list[Mutation | None] = []
    at = now_ms()
    population = dataset.spec.size
    for index in spec.get("delete_indices", []):
        done.append(dataset.delete(int(index), at))
    for index in spec.get("update_indices", []):
        done.append(dataset.update(int(index), at))
    for index in spec.get("touch_indices", []):
        done.append(dataset.update(int(index), at, touch=True))
    for _ in range(int(spec.get("deletes", 0))):
        done.append(dataset.delete(rng.randrange(population), at))
    for _ in range(int(spec.get("updates", 0))):
        done.append(dataset.update(rng.randrange(population), at))
    for _ in range(int(spec.get("inserts", 0))):
        done.append(dataset.insert(at))
    result = [
        {"kind": m.kind, **identity_record(dataset, m.index, m.at_ms)}
        for m in done
        if m is not None
    ]
    return json_response(orjson.dumps(result))


# -- application -----------------------------------------------------------------------------


@web.middleware
async def ocpi_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn OcpiFailure into an OCPI error body and keep in-flight counters."""
    stats = request.app[STATE_KEY].stats
    stats.in_flight += 1
    stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
    try:
        response: web.StreamResponse = await handler(request)
    except OcpiFailure as failure:
        response = json_response(
            envelope(None, failure.status_code, failure.message),
            failure.http_status,
            _echo_ids(request),
        )
    finally:
        stats.in_flight -= 1
    stats.statuses[response.status] += 1
    return response


def build_app(config: SandboxConfig) -> web.Application:
    """The sandbox as an aiohttp application (also used in-process by tests)."""
    app = web.Application(middlewares=[ocpi_errors])
    app[STATE_KEY] = SandboxState(config)
    app.router.add_get("/ocpi/versions", versions)
    app.router.add_get("/ocpi/versions/{version}", version_details)
    app.router.add_get("/ocpi/hub/page/{token}", one_shot_page)
    app.router.add_get("/ocpi/{role}/{version}/{module}", list_objects)
    app.router.add_get("/_sandbox/stats", stats_endpoint)
    app.router.add_get("/_sandbox/truth", truth_endpoint)
    app.router.add_get("/_sandbox/changes", changes_endpoint)
    app.router.add_post("/_sandbox/mutate", mutate_endpoint)
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
            "sandbox stopping: " + orjson.dumps(state.stats.as_dict()).decode(),
            file=sys.stderr,
            flush=True,
        )
