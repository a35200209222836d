"""A partner with finite capacity: K requests served at once, a bounded queue, then 429.

`--capacity-workers K` lets at most K OCPI requests be served at once (page latency is spent
inside a worker, so K / latency is the partner's throughput); later requests wait in a FIFO
queue, so latency grows with load. `--capacity-queue Q` bounds that queue: a request that finds
Q already waiting is answered 429 with `Retry-After` at once. The decision is the pure `admit`;
`CapacityGate` is its asyncio shell and `capacity_middleware` the aiohttp middleware around it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sandbox.protocol import envelope, json_response

Admission = Literal["serve", "wait", "reject"]


def admit(busy: int, waiting: int, workers: int, queue_limit: int | None) -> Admission:
    """What happens to a request that arrives now.

    Served at once only when a worker is free and nobody is queued before it (FIFO); queued
    while the queue has room (`queue_limit` None: unbounded); else rejected.
    """
    if busy < workers and waiting == 0:
        return "serve"
    if queue_limit is None or waiting < queue_limit:
        return "wait"
    return "reject"


class CapacityFull(Exception):
    """The queue is full: answer 429."""


class CapacityGate:
    """Workers and a FIFO queue; a finished request hands its worker to the first in line."""

    def __init__(self, workers: int, queue_limit: int | None) -> None:
        self.workers = workers
        self.queue_limit = queue_limit
        self.busy = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self.served = 0
        self.queued = 0
        self.rejected = 0
        self.max_busy = 0
        self.max_waiting = 0

    @property
    def waiting(self) -> int:
        """Requests in the queue now."""
        return len(self._waiting)

    async def acquire(self) -> None:
        """Take a worker, waiting in line if need be; CapacityFull when the queue is full."""
        decision = admit(self.busy, len(self._waiting), self.workers, self.queue_limit)
        if decision == "reject":
            self.rejected += 1
            raise CapacityFull
        if decision == "serve":
            self._start()
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        self.queued += 1
        self.max_waiting = max(self.max_waiting, len(self._waiting))
        try:
            await turn
        except asyncio.CancelledError:
            # A client that gives up leaves the line; if it was handed a worker just now,
            # that worker goes on to the next in line.
            if turn.done() and not turn.cancelled():
                self.release()
            elif turn in self._waiting:  # a release may have dropped it already
                self._waiting.remove(turn)
            raise

    def _start(self) -> None:
        self.busy += 1
        self.served += 1
        self.max_busy = max(self.max_busy, self.busy)

    def release(self) -> None:
        """A request finished: its worker serves the first in line, or becomes free."""
        self.busy -= 1
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                self._start()
                turn.set_result(None)
                return

    def as_dict(self) -> dict[str, Any]:
        """Counters for `/_sandbox/stats`."""
        return {
            "workers": self.workers,
            "queue_limit": self.queue_limit,
            "busy": self.busy,
            "waiting": len(self._waiting),
            "served": self.served,
            "queued": self.queued,
            "rejected": self.rejected,
            "max_busy": self.max_busy,
            "max_waiting": self.max_waiting,
        }


def capacity_middleware(gate: CapacityGate, retry_after_seconds: int) -> Middleware:
    """aiohttp middleware serving OCPI requests through `gate` (`/_sandbox/` bypasses it)."""

    @web.middleware
    async def capacity_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/ocpi/"):
            return await handler(request)
        try:
            await gate.acquire()
        except CapacityFull:
            return json_response(
                envelope(None, 2000, "Too many requests: the server is at capacity"),
                429,
                {"Retry-After": str(retry_after_seconds)},
            )
        try:
            return await handler(request)
        finally:
            gate.release()

    return capacity_limit
