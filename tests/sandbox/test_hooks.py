"""`/_sandbox/mutate` over HTTP (issue 25): each call draws fresh objects that exist (a second
delete of 30 deletes 30 more), from its `seed` when given (repeatable), else from the sandbox's
own stream."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support import sandbox


async def mutate(base: str, **spec: Any) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        answer = await session.post(f"{base}/_sandbox/mutate", json={"module": "tokens", **spec})
        assert answer.status == 200
        result: list[dict[str, Any]] = await answer.json()
        return result


def deleted(result: list[dict[str, Any]]) -> set[int]:
    assert {m["kind"] for m in result} <= {"delete"}
    return {m["index"] for m in result}


async def test_each_delete_draws_objects_that_still_exist() -> None:
    async with sandbox(sizes={"tokens": 200}) as (base, state):
        first = deleted(await mutate(base, deletes=30))
        second = deleted(await mutate(base, deletes=30))
        assert (len(first), len(second)) == (30, 30)
        assert not first & second
        # The same seed twice: the same draw, less what it already deleted: 30 fresh ones again.
        seeded = deleted(await mutate(base, deletes=30, seed=7))
        again = deleted(await mutate(base, deletes=30, seed=7))
        assert (len(seeded), len(again)) == (30, 30)
        assert not seeded & again
        # Asking for more than exists deletes what is left, and no more.
        rest = deleted(await mutate(base, deletes=500))
        assert len(rest) == 200 - 120
        assert await mutate(base, deletes=1) == []
        assert len(list(state.datasets["tokens"].state_at(10**15))) == 0


async def test_a_seed_repeats_the_draw_in_a_fresh_sandbox() -> None:
    draws = []
    for _ in range(2):
        async with sandbox(sizes={"tokens": 500}) as (base, _):
            draws.append(await mutate(base, updates=10, touches=5, seed=42))
    assert [m["index"] for m in draws[0]] == [m["index"] for m in draws[1]]
    assert [m["kind"] for m in draws[0]] == ["update"] * 10 + ["touch"] * 5
