"""Data that changes with time: `--mutations-per-s` mutations per second, whatever is requested.

`--mutation-rate` ties changes to objects served (a client that pages faster sees fewer changes
per page); a real partner's cards are issued and blocked on the wall clock. The schedule is fixed:
the n-th mutation of each module falls due at n / rate seconds after start, and which object it
changes, and how, comes from a per-module stream seeded by `--seed`. So two runs with one seed
make the same changes in the same order; only which page sees which change depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator

from aiohttp import web

from sandbox.generator import MODULES
from sandbox.state import STATE_KEY, SandboxState

# Waking more often than this buys nothing: mutations are stamped in whole seconds anyway.
MIN_SLEEP_S = 0.01


def mutations_due(elapsed_s: float, per_s: float) -> int:
    """How many mutations a schedule of `per_s` per second has made after `elapsed_s`."""
    if per_s <= 0.0 or elapsed_s <= 0.0:
        return 0
    return math.floor(elapsed_s * per_s)


def seconds_until_next(done: int, elapsed_s: float, per_s: float) -> float:
    """How long to sleep before mutation number `done + 1` falls due."""
    return max(MIN_SLEEP_S, (done + 1) / per_s - elapsed_s)


async def churn(state: SandboxState) -> None:
    """Mutate every non-empty module on the schedule until cancelled."""
    config = state.config
    per_s = config.mutations_per_s
    streams = {
        module: random.Random(config.seed * 1_000_003 + 17 * (MODULES.index(module) + 1))
        for module in MODULES
        if config.sizes.get(module, 0) > 0
    }
    started = time.monotonic()
    done = 0
    while True:
        elapsed = time.monotonic() - started
        due = mutations_due(elapsed, per_s)
        for _ in range(due - done):
            stamp = state.now_ms()
            for module, rng in streams.items():
                state.datasets[module].mutate_randomly(rng, stamp, config.mutation_kinds)
        done = due
        await asyncio.sleep(seconds_until_next(done, elapsed, per_s))


async def churn_context(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: the churn task lives exactly as long as the application."""
    task = asyncio.create_task(churn(app[STATE_KEY]), name="sandbox-churn")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
