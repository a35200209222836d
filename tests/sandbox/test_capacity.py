"""The capacity model: K workers, a FIFO queue of at most Q, then 429 with Retry-After."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.capacity import CapacityFull, CapacityGate, admit
from tests.support import auth_header, get, sandbox

TOKENS = "/ocpi/emsp/2.2.1/tokens"


@pytest.mark.parametrize(
    ("busy", "waiting", "workers", "queue", "expected"),
    [
        (0, 0, 1, 0, "serve"),
        (1, 0, 1, 0, "reject"),
        (1, 0, 1, 1, "wait"),
        (1, 1, 1, 1, "reject"),
        (1, 1, 2, 5, "wait"),  # a free worker, but someone is first in line
        (3, 7, 3, None, "wait"),  # no queue limit
    ],
)
def test_admit(busy: int, waiting: int, workers: int, queue: int | None, expected: str) -> None:
    assert admit(busy, waiting, workers, queue) == expected


@given(
    workers=st.integers(1, 4),
    queue=st.none() | st.integers(0, 4),
    events=st.lists(st.sampled_from(["arrive", "finish"]), max_size=60),
)
def test_a_simulated_partner_never_exceeds_its_workers_or_queue(
    workers: int, queue: int | None, events: list[str]
) -> None:
    busy, line, rejected, arrived, started = 0, deque[int](), 0, 0, []
    for event in events:
        if event == "arrive":
            decision = admit(busy, len(line), workers, queue)
            if decision == "serve":
                busy += 1
                started.append(arrived)
            elif decision == "wait":
                line.append(arrived)
            else:
                rejected += 1
                assert len(line) == (queue or 0)  # only a full queue turns anyone away
            arrived += 1
        elif busy:
            busy -= 1
            if line:  # the worker goes to the first in line
                busy += 1
                started.append(line.popleft())
        assert busy <= workers
        assert queue is None or len(line) <= queue
        assert not line or busy == workers  # nobody waits while a worker is idle
    assert started == sorted(started)  # first come, first served


async def test_the_gate_serves_in_arrival_order_and_lets_leavers_go() -> None:
    gate = CapacityGate(workers=1, queue_limit=2)
    order: list[str] = []

    async def request(name: str, hold: asyncio.Event) -> None:
        await gate.acquire()
        try:
            order.append(name)
            await hold.wait()
        finally:
            gate.release()

    release = asyncio.Event()
    first = asyncio.create_task(request("first", release))
    await asyncio.sleep(0)
    second = asyncio.create_task(request("second", release))
    leaver = asyncio.create_task(request("leaver", release))
    await asyncio.sleep(0)
    assert (gate.busy, gate.waiting) == (1, 2)
    leaver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaver
    assert gate.waiting == 1
    third = asyncio.create_task(request("third", release))
    await asyncio.sleep(0)
    with pytest.raises(CapacityFull):
        await gate.acquire()  # one working, two waiting: full
    release.set()
    await asyncio.gather(first, second, third)
    assert order == ["first", "second", "third"]
    assert gate.as_dict() == {
        "workers": 1,
        "queue_limit": 2,
        "busy": 0,
        "waiting": 0,
        "served": 3,
        "queued": 3,
        "rejected": 1,
        "max_busy": 1,
        "max_waiting": 2,
    }


async def wait_until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_a_full_queue_answers_429_with_retry_after_over_http() -> None:
    # Requests take 5-15 s, so the first two hold the worker and the queue while we knock.
    async with sandbox(
        sizes={"tokens": 10},
        capacity_workers=1,
        capacity_queue=1,
        latency_ms=10_000,
        retry_after_seconds=3,
    ) as (base, state):
        gate = state.capacity
        assert gate is not None
        working = asyncio.create_task(get(f"{base}{TOKENS}", auth_header()))
        await wait_until(lambda: gate.busy == 1)
        waiting = asyncio.create_task(get(f"{base}{TOKENS}", auth_header()))
        await wait_until(lambda: gate.waiting == 1)
        status, body, headers = await get(f"{base}{TOKENS}", auth_header())
        discovery, _, _ = await get(f"{base}/ocpi/versions", auth_header())
        _, stats, _ = await get(f"{base}/_sandbox/stats")  # hooks bypass the gate
        working.cancel()
        waiting.cancel()
        await wait_until(lambda: gate.busy == 0 and gate.waiting == 0)  # leavers free their place
    assert (status, discovery) == (429, 429)
    assert body["status_code"] == 2000
    assert headers["Retry-After"] == "3"
    assert stats["capacity"]["rejected"] == 2
    assert stats["capacity"]["busy"] == 1
    assert stats["capacity"]["waiting"] == 1
    assert stats["statuses"]["429"] == 2


async def test_requests_beyond_the_workers_wait_their_turn_and_are_all_served() -> None:
    async with sandbox(sizes={"tokens": 10}, capacity_workers=2, latency_ms=50) as (base, state):
        answers = await asyncio.gather(*(get(f"{base}{TOKENS}", auth_header()) for _ in range(7)))
        _, stats, _ = await get(f"{base}/_sandbox/stats")
    assert [status for status, _, _ in answers] == [200] * 7
    assert stats["capacity"]["served"] == 7
    assert stats["capacity"]["max_busy"] <= 2
    assert stats["capacity"]["rejected"] == 0
    assert state.capacity is not None
    assert state.capacity.busy == 0


async def test_no_capacity_flags_no_gate() -> None:
    async with sandbox(sizes={"tokens": 10}) as (base, state):
        _, stats, _ = await get(f"{base}/_sandbox/stats")
    assert state.capacity is None
    assert "capacity" not in stats
