"""The bytes in flight (producer/pull/budget.py): never more than the budget, one larger page
alone, first come first served, and a cancelled waiter gives back what it held or was given."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.pull.budget import ByteBudget


async def test_pages_that_fit_go_at_once_and_the_next_waits_for_room() -> None:
    budget = ByteBudget(100)
    await budget.acquire(60)
    await budget.acquire(40)
    waiting = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)
    assert not waiting.done()
    budget.release(40)
    await waiting
    assert budget.in_flight == 70


async def test_a_page_larger_than_the_budget_goes_alone() -> None:
    budget = ByteBudget(100)
    await budget.acquire(500)  # nothing in flight: it goes
    small = asyncio.create_task(budget.acquire(1))
    await asyncio.sleep(0)
    assert not small.done()
    budget.release(500)
    await small
    assert budget.most_in_flight == 500


async def test_waiters_are_served_in_the_order_they_came() -> None:
    budget = ByteBudget(100)
    await budget.acquire(90)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        await budget.acquire(size)
        order.append(name)

    large = asyncio.create_task(take("large", 80))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 5))  # would fit now, but came second
    await asyncio.sleep(0)
    assert order == []
    budget.release(90)
    await asyncio.gather(large, small)
    assert order == ["large", "small"]


async def test_a_cancelled_waiter_lets_the_ones_behind_it_go() -> None:
    budget = ByteBudget(100)
    await budget.acquire(90)
    large = asyncio.create_task(budget.acquire(80))
    await asyncio.sleep(0)
    small = asyncio.create_task(budget.acquire(5))
    await asyncio.sleep(0)
    large.cancel()
    await asyncio.gather(large, return_exceptions=True)
    await small
    assert budget.in_flight == 95


async def test_a_waiter_cancelled_after_it_was_served_gives_its_bytes_back() -> None:
    budget = ByteBudget(100)
    await budget.acquire(100)
    waiting = asyncio.create_task(budget.acquire(50))
    await asyncio.sleep(0)
    budget.release(100)  # serves the waiter before it runs again
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.in_flight == 0


def test_a_budget_needs_a_byte() -> None:
    with pytest.raises(ValueError, match="at least one byte"):
        ByteBudget(0)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 1000),
    pages=st.lists(st.tuples(st.integers(1, 1500), st.integers(0, 3)), min_size=1, max_size=30),
)
def test_the_budget_is_never_exceeded_but_by_one_page_alone(
    limit: int, pages: list[tuple[int, int]]
) -> None:
    """Pages of random sizes, each held for a few loop turns: every one goes, and what is in
    flight is within the budget or is one page alone."""

    async def scenario() -> None:
        budget = ByteBudget(limit)
        alone: list[bool] = []
        held: list[int] = []

        async def page(size: int, turns: int) -> None:
            await budget.acquire(size)
            held.append(size)
            assert budget.in_flight <= limit or len(held) == 1
            alone.append(len(held) == 1)
            for _ in range(turns):
                await asyncio.sleep(0)
            held.remove(size)
            budget.release(size)

        await asyncio.wait_for(asyncio.gather(*(page(s, t) for s, t in pages)), 5)
        assert budget.in_flight == 0
        assert len(alone) == len(pages)

    asyncio.run(scenario())
