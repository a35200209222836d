"""Helpers for tests that run the puller against the sandbox and a real broker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from producer.config import PullSettings
from producer.observe.telemetry import Telemetry, setup_telemetry
from producer.observe.view import LogView
from producer.run import RunResult, run_pulls
from sandbox.app import SandboxState, running_sandbox
from sandbox.config import SandboxConfig
from sandbox.generator import Module
from schemas.keys import PartnerIdentity, object_key
from tests.kafka_read import keys as keys  # the one topic reader, at hand with the pull
from tests.kafka_read import records as records

TOKEN = "sandbox-token"
PARTNER = PartnerIdentity("NL", "SBX")


def sandbox_config(**overrides: Any) -> SandboxConfig:
    """A sandbox on a free port with small datasets unless told otherwise."""
    sizes: dict[Module, int] = {
        "tokens": 0,
        "locations": 0,
        "tariffs": 0,
        "sessions": 0,
        "cdrs": 0,
    }
    sizes.update(overrides.pop("sizes", {}))
    return replace(SandboxConfig(port=0), sizes=sizes, **overrides)


@contextlib.asynccontextmanager
async def sandbox(**overrides: Any) -> AsyncIterator[tuple[str, SandboxState]]:
    """The sandbox partner in this process, on a free port."""
    async with running_sandbox(sandbox_config(**overrides)) as running:
        yield running


def auth_header(version: str = "2.2.1", token: str = TOKEN) -> dict[str, str]:
    """The Authorization header the sandbox expects for `version`."""
    value = token if version == "2.1.1" else base64.b64encode(token.encode()).decode()
    return {"Authorization": f"Token {value}"}


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """GET a URL: status, parsed JSON body (or text), headers."""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        body = await response.read()
        try:
            parsed: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = body.decode(errors="replace")
        headers_out = dict(response.headers.items())
        if "Link" in response.headers:
            headers_out["Link"] = ", ".join(response.headers.getall("Link"))
        return response.status, parsed, headers_out


def settings(base_url: str, bootstrap: str, prefix: str, **overrides: Any) -> PullSettings:
    """Pull settings for the sandbox at `base_url` (tokens over versions discovery by default)."""
    return pull_settings(bootstrap, prefix, **{"url": f"{base_url}/ocpi/versions", **overrides})


def pull_settings(bootstrap: str, prefix: str, **overrides: Any) -> PullSettings:
    """The tests' pull settings, for the sandbox's partner, on `bootstrap` under `prefix`."""
    values: dict[str, Any] = {
        "token": TOKEN,
        "module": "tokens",
        "bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "partner": "sbx",
        "partner_country": "NL",
        "partner_party": "SBX",
        "progress_bar": False,
        "output": "json",
        "topic_partitions": 3,
        "request_timeout_s": 5.0,
    }
    values.update(overrides)
    return PullSettings(**values)


async def pull(
    base_url: str,
    bootstrap: str,
    prefix: str,
    *,
    telemetry: Telemetry | None = None,
    **overrides: Any,
) -> RunResult:
    """Run `ocpi-puller pull` in this process and return its result."""
    return await run_pull(settings(base_url, bootstrap, prefix, **overrides), telemetry=telemetry)


async def run_pull(settings: PullSettings, *, telemetry: Telemetry | None = None) -> RunResult:
    """The tests' one pull runner: `ocpi-puller pull` with `settings`, in this process."""
    return await run_pulls(settings, telemetry=telemetry or setup_telemetry({}), view=LogView())


def truth_keys(
    state: SandboxState,
    module: str,
    version: str,
    at_ms: int,
    *,
    valid_only: bool = True,
) -> dict[str, int]:
    """Key → last_updated (ms) of every object that existed at `at_ms`, per the sandbox."""
    dataset = state.datasets[module]
    expected: dict[str, int] = {}
    for entry in dataset.state_at(at_ms):
        if valid_only and entry.invalid is not None:
            continue
        ident = dataset.factory.identity(entry.index)
        obj: dict[str, Any] = {
            "country_code": ident.country_code,
            "party_id": ident.party_id,
            "id": ident.object_id,
            "uid": ident.object_id,
            "type": ident.token_type
            if version != "2.1.1" or ident.token_type != "APP_USER"
            else "OTHER",
        }
        expected[object_key(module, version, obj, PARTNER)] = entry.last_updated_ms
    return expected


def expected_survivors(state: SandboxState, module: str, version: str, pin: int) -> set[str]:
    """Objects that existed at the pin and were not changed or deleted during the pull."""
    dataset = state.datasets[module]
    changed = dataset.changed_since(pin)
    truth = truth_keys(state, module, version, pin)
    changed_keys = set(truth_keys_for(state, module, version, changed))
    return set(truth) - changed_keys


def truth_keys_for(state: SandboxState, module: str, version: str, indices: set[int]) -> list[str]:
    """The keys of the objects at `indices` (whatever their state)."""
    dataset = state.datasets[module]
    out = []
    for index in indices:
        ident = dataset.factory.identity(index)
        obj = {
            "country_code": ident.country_code,
            "party_id": ident.party_id,
            "id": ident.object_id,
            "uid": ident.object_id,
            "type": ident.token_type,
        }
        out.append(object_key(module, version, obj, PARTNER))
    return out


def just_after(now_ms: int) -> datetime:
    """A `date_to` just past changes the sandbox stamped at `now_ms` (it stamps whole seconds):
    the next pull sees them without sleeping until the clock crosses into the next second."""
    return datetime.fromtimestamp(now_ms // 1000 + 1, UTC)


def pinned_ms(result: RunResult) -> int:
    """The pinned date_to of a single-pull result, in epoch ms."""
    date_to = result.summaries[0].date_to
    assert date_to is not None
    return int(datetime.fromisoformat(date_to).timestamp() * 1000)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`ocpi-puller ARGS` in its own process, stdin not a terminal: exit code, stdout, stderr."""
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await command.communicate()
    assert command.returncode is not None
    return command.returncode, out.decode(), err.decode()
