"""Test hooks under `/_sandbox/`: statistics, the ground truth at an instant, changes, mutations.

They are not OCPI and need no credentials: tests and the chaos run use them to compare what a
client pulled with what the partner really held.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
from aiohttp import web

from sandbox.dataset import Dataset, Mutation
from sandbox.dialects import served_identity
from sandbox.generator import format_datetime
from sandbox.protocol import OcpiFailure, json_response, parse_ocpi_datetime
from sandbox.state import STATE_KEY


async def stats_endpoint(request: web.Request) -> web.Response:
    """GET /_sandbox/stats: request counters, objects served, mutations made."""
    return json_response(orjson.dumps(request.app[STATE_KEY].report()))


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
    """GET /_sandbox/truth?module=&at=&version=: NDJSON of every object that existed at `at`.

    Each record holds the canonical identity (`country_code`, `party_id`, `id`, `type` for
    tokens), `last_updated` and `invalid`; while the `lowercase` dialect is on, also `served`:
    the identity as objects of `version` (default 2.2.1) carry it.
    """
    dataset = _dataset(request)
    dialects = request.app[STATE_KEY].config.dialects
    served_version = request.query.get("version", "2.2.1") if "lowercase" in dialects else None
    at_raw = request.query.get("at")
    at_ms = request.app[STATE_KEY].now_ms() if not at_raw else parse_ocpi_datetime(at_raw)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    chunk: list[bytes] = []
    for entry in dataset.state_at(at_ms):
        record = identity_record(dataset, entry.index, entry.last_updated_ms)
        record["invalid"] = entry.invalid
        if served_version is not None:
            record["served"] = served_identity(record, served_version, dialects)
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
    """POST /_sandbox/mutate {module, deletes, updates, touches, inserts, seed?, *_indices?}:
    change data now.

    `deletes`, `updates` and `touches` draw that many objects that exist now, fresh each call (a
    second delete of 30 deletes 30 more): from `seed` when given (the same seed repeats the draw,
    less what is gone), else from the sandbox's own stream. `*_indices` name objects outright.
    """
    state = request.app[STATE_KEY]
    spec = await request.json()
    dataset = state.datasets.get(spec.get("module", ""))
    if dataset is None:
        raise OcpiFailure(400, 2001, "Unknown module")
    rng = random.Random(spec["seed"]) if "seed" in spec else state.mutation_rng
    done: list[Mutation | None] = []
    at = state.now_ms()
    for index in spec.get("delete_indices", []):
        done.append(dataset.delete(int(index), at))
    for index in spec.get("update_indices", []):
        done.append(dataset.update(int(index), at))
    for index in spec.get("touch_indices", []):
        done.append(dataset.update(int(index), at, touch=True))
    for index in dataset.draw_alive(rng, int(spec.get("deletes", 0))):
        done.append(dataset.delete(index, at))
    for index in dataset.draw_alive(rng, int(spec.get("updates", 0))):
        done.append(dataset.update(index, at))
    for index in dataset.draw_alive(rng, int(spec.get("touches", 0))):
        done.append(dataset.update(index, at, touch=True))
    for _ in range(int(spec.get("inserts", 0))):
        done.append(dataset.insert(at))
    result = [
        {"kind": m.kind, **identity_record(dataset, m.index, m.at_ms)}
        for m in done
        if m is not None
    ]
    return json_response(orjson.dumps(result))


def add_hook_routes(app: web.Application) -> None:
    """Register the `/_sandbox/` routes."""
    app.router.add_get("/_sandbox/stats", stats_endpoint)
    app.router.add_get("/_sandbox/truth", truth_endpoint)
    app.router.add_get("/_sandbox/changes", changes_endpoint)
    app.router.add_post("/_sandbox/mutate", mutate_endpoint)
