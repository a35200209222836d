"""Permits for requests in flight to one partner, following the concurrency controller.

The asyncio shell of `ocpi/http/concurrency.py`: it reads the clock, parks tasks that have no
permit, and feeds every outcome to the controller; the controller decides. One limiter per partner,
shared by all of that partner's modules and windows (they share its capacity). A fixed
`--concurrency N` is the same class with a constant limit (`AdaptiveLimiter.fixed(N)`), so callers
have one code path.

The limiter only bounds requests in flight. Pacing stays with the `RequestGate` (rate limit, and
the partner-wide pause a 429's `Retry-After` asks for). Take the permit first, then wait for the
gate, then mark the request sent, so latency is measured from the moment it really leaves:

    async with limiter.slot(endpoint="locations") as slot:
        await gate.wait_turn()
        slot.sent()
        ...  # send, read the body
        slot.answered()  # the partner's part ends here: parsing is ours, not its latency
        ...  # parse the envelope
        slot.finish("ok", full_page=len(items) == requested_limit)
        # or: slot.finish("throttled", retry_after_s=...), "unavailable", "timeout", "reset"

Take one slot per attempt, not per page with its retries: a backoff sleep should not hold a permit.
A slot left without `finish` (an exception, a cancellation, a fatal answer) gives its permit back
and tells the controller nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from producer.ocpi.http.concurrency import (
    ConcurrencyController,
    ConcurrencySummary,
    ControllerConfig,
    LimitChange,
    Outcome,
    Response,
)


class Slot:
    """One permit, held by one request from acquisition to `finish` (or the end of its block)."""

    __slots__ = (
        "_limiter",
        "answered_at",
        "endpoint",
        "granted_at",
        "inflight_at_send",
        "released",
        "sent_at",
    )

    def __init__(self, limiter: AdaptiveLimiter, endpoint: str, granted_at: float) -> None:
        self._limiter = limiter
        self.endpoint = endpoint
        self.granted_at = granted_at
        self.sent_at: float | None = None
        self.answered_at: float | None = None
        self.inflight_at_send = 0
        self.released = False

    def sent(self) -> None:
        """The request leaves now (after the RequestGate): its latency counts from here."""
        if self.sent_at is None and not self.released:
            self._limiter._mark_sent(self)

    def answered(self) -> None:
        """The partner's answer (the whole body) has arrived: its latency ends here, so our own
        work on the answer (parsing, validation) never counts as the partner's."""
        if self.answered_at is None and not self.released:
            self.answered_at = self._limiter._clock()

    def finish(
        self, outcome: Outcome, *, full_page: bool = True, retry_after_s: float | None = None
    ) -> LimitChange | None:
        """Report the answer and give the permit back; returns the limit change it caused.

        `full_page` is False for a short (last) page; `retry_after_s` is a 429's parsed
        `Retry-After`. Calling it twice, or after the block ended, does nothing.
        """
        if self.released:
            return None
        return self._limiter._release(self, outcome, full_page, retry_after_s)


class AdaptiveLimiter:
    """Requests in flight to one partner, bounded by a controller's permits (FIFO waiters)."""

    def __init__(
        self,
        controller: ConcurrencyController,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[LimitChange], None] | None = None,
    ) -> None:
        self._controller = controller
        self._clock = clock
        self._on_change = on_change
        self._held = 0  # permits granted and not yet given back
        self._in_flight = 0  # of those, requests actually sent
        self._waiters: deque[asyncio.Future[None]] = deque()

    @classmethod
    def adaptive(
        cls,
        max_limit: int = 32,
        *,
        rng: random.Random | None = None,
        on_change: Callable[[LimitChange], None] | None = None,
    ) -> AdaptiveLimiter:
        """`--concurrency auto`: the measured defaults, bounded by `--max-concurrency`."""
        defaults = ControllerConfig()
        config = ControllerConfig(
            initial_limit=min(defaults.initial_limit, max_limit), max_limit=max_limit
        )
        return cls(ConcurrencyController(config, rng or random.Random()), on_change=on_change)

    @classmethod
    def fixed(cls, limit: int) -> AdaptiveLimiter:
        """`--concurrency N`: the same interface with a limit nothing changes."""
        return cls(ConcurrencyController(ControllerConfig.fixed(limit)))

    # -- gauges for progress events and the summary -----------------------------------------------

    @property
    def limit(self) -> float:
        """The controller's limit (a float)."""
        return self._controller.limit

    @property
    def permits(self) -> int:
        """Requests allowed in flight now."""
        return self._controller.permits

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return self._in_flight

    @property
    def held(self) -> int:
        """Permits granted and not given back (sent, or waiting for the RequestGate)."""
        return self._held

    @property
    def waiting(self) -> int:
        """Tasks waiting for a permit."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    @property
    def controller(self) -> ConcurrencyController:
        """The pure controller behind the permits (baselines, config)."""
        return self._controller

    def summary(self) -> ConcurrencySummary:
        """`concurrency_min/max/final` and counts over the run so far."""
        return self._controller.summary()

    # -- permits ----------------------------------------------------------------------------------

    async def acquire(self, endpoint: str = "") -> Slot:
        """Wait for a permit (first come, first served). Prefer `slot()`, which always releases."""
        if not self._waiters and self._held < self.permits:
            self._held += 1
            return Slot(self, endpoint, self._clock())
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted and cancelled in the same instant: pass the permit on.
                self._held -= 1
                self._grant()
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return Slot(self, endpoint, self._clock())

    @asynccontextmanager
    async def slot(self, endpoint: str = "") -> AsyncIterator[Slot]:
        """Hold a permit for one request; it is given back however the block ends."""
        held = await self.acquire(endpoint)
        try:
            yield held
        finally:
            if not held.released:
                self._abandon(held)

    # -- internals (called by Slot) ---------------------------------------------------------------

    def _mark_sent(self, slot: Slot) -> None:
        self._in_flight += 1
        slot.sent_at = self._clock()
        slot.inflight_at_send = self._in_flight

    def _release(
        self, slot: Slot, outcome: Outcome, full_page: bool, retry_after_s: float | None
    ) -> LimitChange | None:
        now = self._clock()
        if slot.sent_at is None:  # `sent()` was not called: the grant is the best guess
            slot.sent_at, slot.inflight_at_send = slot.granted_at, self._in_flight + 1
            self._in_flight += 1
        self._give_back(slot)
        answered = now if slot.answered_at is None else slot.answered_at
        response = Response(
            latency_s=max(0.0, answered - slot.sent_at),
            inflight=slot.inflight_at_send,
            outcome=outcome,
            full_page=full_page,
            retry_after_s=retry_after_s,
            endpoint=slot.endpoint,
        )
        change = self._controller.on_response(now, response)
        if change is not None and self._on_change is not None:
            self._on_change(change)
        self._grant()
        return change

    def _abandon(self, slot: Slot) -> None:
        self._give_back(slot)
        self._grant()

    def _give_back(self, slot: Slot) -> None:
        slot.released = True
        self._held -= 1
        if slot.sent_at is not None:
            self._in_flight -= 1

    def _grant(self) -> None:
        # Permits may have shrunk below what is held: then nobody is woken until enough return.
        while self._waiters and self._held < self.permits:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._held += 1
                waiter.set_result(None)
