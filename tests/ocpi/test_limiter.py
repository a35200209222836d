"""The adaptive limiter (producer/ocpi/http/limiter.py) on a real event loop.

The controller behind it is the real one; only the clock is a counter the test moves, so the
latencies it sees are exact. Assertions are about counts and order, never about durations.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from producer.ocpi.http.concurrency import (
    ConcurrencyController,
    ControllerConfig,
    LimitChange,
    Response,
)
from producer.ocpi.http.limiter import AdaptiveLimiter, Slot
from producer.ocpi.http.ratelimit import RequestGate


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter_at(limit: float, clock: Clock, **changes: object) -> AdaptiveLimiter:
    config = ControllerConfig(initial_limit=limit, **changes)  # type: ignore[arg-type]
    return AdaptiveLimiter(ConcurrencyController(config, random.Random(1)), clock=clock)


async def settle() -> None:
    """Let every runnable task run until it blocks."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_no_task_starts_beyond_the_permits() -> None:
    limiter = AdaptiveLimiter.fixed(3)
    running = peak = 0

    async def request() -> None:
        nonlocal running, peak
        async with limiter.slot() as slot:
            slot.sent()
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            running -= 1
            slot.finish("ok")

    async with asyncio.TaskGroup() as group:
        for _ in range(50):
            group.create_task(request())
    assert peak == 3
    assert (limiter.held, limiter.in_flight, limiter.waiting) == (0, 0, 0)


async def test_permits_are_granted_first_come_first_served() -> None:
    limiter = AdaptiveLimiter.fixed(1)
    order: list[int] = []
    first = await limiter.acquire()

    async def request(i: int) -> None:
        async with limiter.slot():
            order.append(i)

    tasks = [asyncio.create_task(request(i)) for i in range(5)]
    await settle()
    assert order == []
    first.finish("ok")
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_a_429_shrinks_the_permits_and_nobody_starts_until_enough_return() -> None:
    clock = Clock()
    limiter = limiter_at(8, clock)
    slots = [await limiter.acquire() for _ in range(8)]
    for slot in slots:
        slot.sent()
    clock.now = 0.5
    change = slots[0].finish("throttled", retry_after_s=1.0)
    assert change is not None
    assert limiter.permits == 4
    started: list[int] = []

    async def request(i: int) -> None:
        async with limiter.slot() as slot:
            started.append(i)
            slot.sent()
            await asyncio.Event().wait()  # held until cancelled

    waiting = [asyncio.create_task(request(i)) for i in range(6)]
    await settle()
    # 7 still held, 4 allowed: the next start needs 4 of them back.
    for slot in slots[1:5]:
        assert started == []
        slot.finish("ok")  # answers to requests sent before the cut: ignored by the controller
        await settle()
    assert started == [0]
    assert limiter.held == 4
    for slot in slots[5:]:
        slot.finish("ok")
    await settle()
    assert started == [0, 1, 2, 3]
    assert limiter.held == limiter.permits == 4
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert limiter.held == 0


async def test_permits_grow_with_clean_answers_and_wake_the_waiters() -> None:
    clock = Clock()
    limiter = limiter_at(2, clock)
    at_send: list[tuple[int, int]] = []  # (in flight, permits) as each request leaves
    queue: asyncio.Queue[Slot] = asyncio.Queue()

    async def request() -> None:
        slot = await limiter.acquire()
        slot.sent()
        at_send.append((limiter.in_flight, limiter.permits))
        await queue.put(slot)

    async with asyncio.TaskGroup() as group:
        for _ in range(200):
            group.create_task(request())
        # The "partner" answers each request 0.1 s after it is sent, in order.
        for _ in range(200):
            slot = await queue.get()
            clock.now += 0.1 / limiter.permits
            slot.finish("ok")
    assert limiter.permits > 2
    assert all(in_flight <= permits for in_flight, permits in at_send)
    assert max(in_flight for in_flight, _ in at_send) > 2
    assert limiter.summary().minimum == 2


async def test_a_cancelled_waiter_leaks_no_permit() -> None:
    limiter = AdaptiveLimiter.fixed(1)
    holder = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await settle()
    assert limiter.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    holder.finish("ok")
    assert limiter.held == 0
    async with limiter.slot():
        assert limiter.held == 1


async def test_a_waiter_cancelled_as_it_is_granted_passes_the_permit_on() -> None:
    limiter = AdaptiveLimiter.fixed(1)
    holder = await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await settle()
    holder.finish("ok")  # grants `first`, which has not run yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    slot = await second
    assert limiter.held == 1
    slot.finish("ok")
    assert limiter.held == 0


async def test_a_block_left_by_an_error_returns_the_permit_and_reports_nothing() -> None:
    clock = Clock()
    limiter = limiter_at(4, clock)
    in_flight: list[int] = []

    async def fails() -> None:
        async with limiter.slot() as slot:
            slot.sent()
            in_flight.append(limiter.in_flight)
            raise RuntimeError("fatal answer")

    with pytest.raises(RuntimeError):
        await fails()
    assert in_flight == [1]
    assert (limiter.held, limiter.in_flight) == (0, 0)
    assert limiter.summary().changes == 0


async def test_finish_is_once_and_tells_the_change_to_the_callback() -> None:
    clock = Clock()
    changes: list[LimitChange] = []
    config = ControllerConfig(initial_limit=8)
    controller = ConcurrencyController(config, random.Random(1))
    limiter = AdaptiveLimiter(controller, clock=clock, on_change=changes.append)
    slot = await limiter.acquire("locations")
    slot.sent()
    clock.now = 0.2
    assert slot.finish("timeout") is not None
    assert slot.finish("timeout") is None
    assert [c.reason for c in changes] == ["timeout: ×0.50"]
    assert (limiter.permits, limiter.held) == (4, 0)


async def test_a_latency_sample_ends_when_the_answer_arrived_not_once_it_is_parsed() -> None:
    clock = Clock()
    samples: list[float] = []

    class Recording(ConcurrencyController):
        def on_response(self, now: float, response: Response) -> LimitChange | None:
            samples.append(response.latency_s)
            return super().on_response(now, response)

    limiter = AdaptiveLimiter(Recording(ControllerConfig(initial_limit=4)), clock=clock)
    slot = await limiter.acquire()
    slot.sent()
    clock.now = 0.3
    slot.answered()  # the body is in
    clock.now = 0.5  # our own parsing is not the partner's time
    slot.answered()  # (once: the first arrival counts)
    slot.finish("ok")
    unmarked = await limiter.acquire()
    unmarked.sent()
    clock.now = 0.7
    unmarked.finish("ok")  # no arrival marked: the sample ends at finish, as before
    assert samples == [pytest.approx(0.3), pytest.approx(0.2)]


async def test_an_unsent_slot_counts_from_its_grant() -> None:
    clock = Clock()
    limiter = limiter_at(4, clock)
    slot = await limiter.acquire()
    clock.now = 3.0
    slot.finish("ok")
    assert slot.sent_at == 0.0
    assert slot.inflight_at_send == 1
    assert (limiter.held, limiter.in_flight) == (0, 0)


async def test_a_fixed_limit_is_the_same_interface_and_never_moves() -> None:
    limiter = AdaptiveLimiter.fixed(8)
    for outcome in ("throttled", "timeout", "unavailable", "reset", "ok"):
        async with limiter.slot() as slot:
            slot.sent()
            slot.finish(outcome, retry_after_s=5.0)  # type: ignore[arg-type]
    summary = limiter.summary()
    assert (limiter.limit, limiter.permits) == (8.0, 8)
    assert (summary.minimum, summary.maximum, summary.final, summary.cuts) == (8, 8, 8, 0)


def test_adaptive_respects_max_concurrency() -> None:
    assert AdaptiveLimiter.adaptive(32).permits == 2
    assert AdaptiveLimiter.adaptive(1).permits == 1
    assert AdaptiveLimiter.adaptive(6).controller.config.max_limit == 6


async def test_a_paused_gate_holds_permits_without_counting_requests_in_flight() -> None:
    limiter = AdaptiveLimiter.fixed(4)
    gate = RequestGate(None)
    gate.pause(0.05)  # a partner's Retry-After: nothing may be sent before it ends
    sent_at_inflight: list[int] = []

    async def request() -> None:
        async with limiter.slot() as slot:
            await gate.wait_turn()
            slot.sent()
            sent_at_inflight.append(slot.inflight_at_send)
            await asyncio.sleep(0)
            slot.finish("ok")

    tasks = [asyncio.create_task(request()) for _ in range(6)]
    await settle()
    assert (limiter.held, limiter.in_flight, limiter.waiting) == (4, 0, 2)
    await asyncio.gather(*tasks)
    assert len(sent_at_inflight) == 6
    assert max(sent_at_inflight) <= 4
    assert (limiter.held, limiter.in_flight) == (0, 0)
