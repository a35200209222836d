"""Churn: list order (last_updated or created), mutations per second, and exact ground truth."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.churn import mutations_due, seconds_until_next
from sandbox.dataset import Dataset, DatasetSpec, ListOrder
from tests.sandbox.paging import walk_chain
from tests.support import auth_header, get, sandbox

TOKENS = "/ocpi/emsp/2.2.1/tokens"
FUTURE_MS = 4_102_444_800_000  # 2100-01-01: later than any mutation


def expected_list(
    dataset: Dataset, order: ListOrder, date_from: int | None, date_to: int | None
) -> list[tuple[int, int]]:
    """(index, last_updated) of the filtered list as the spec of each order says, from truth."""
    current = [
        (e.index, e.last_updated_ms)
        for e in dataset.state_at(FUTURE_MS)
        if (date_from is None or e.last_updated_ms >= date_from)
        and (date_to is None or e.last_updated_ms < date_to)
    ]
    if order == "created":
        return sorted(current)
    return sorted(current, key=lambda pair: (pair[1], pair[0]))


MUTATIONS_AT = 1_800_000_000_000
BOUND = (
    st.none()
    | st.integers(0, 70).map(lambda s: ("base", s))
    | st.integers(0, 30).map(lambda s: ("mutations", s))
)


def bound_ms(dataset: Dataset, bound: tuple[str, int] | None) -> int | None:
    """A filter bound among the base objects' seconds or among the mutations' seconds."""
    if bound is None:
        return None
    where, second = bound
    start = dataset.base_last_updated(0) if where == "base" else MUTATIONS_AT
    return start + second * 1000


@settings(max_examples=80, deadline=None)
@given(
    order=st.sampled_from(["last_updated", "created"]),
    size=st.integers(0, 60),
    steps=st.lists(
        st.tuples(st.sampled_from(["update", "delete", "insert", "touch"]), st.integers(0, 80)),
        max_size=40,
    ),
    window=st.tuples(BOUND, BOUND),
    offset=st.integers(0, 90),
    limit=st.integers(1, 30),
)
def test_pages_match_the_truth_in_either_order(
    order: ListOrder,
    size: int,
    steps: list[tuple[str, int]],
    window: tuple[tuple[str, int] | None, tuple[str, int] | None],
    offset: int,
    limit: int,
) -> None:
    dataset = Dataset(DatasetSpec(module="tokens", size=size, order=order))
    for n, (kind, index) in enumerate(steps):
        at = MUTATIONS_AT + n * 700  # several mutations share a second, as they do
        if kind == "insert":
            dataset.insert(at)
        elif kind == "delete":
            dataset.delete(index, at)
        else:
            dataset.update(index, at, touch=kind == "touch")
    date_from, date_to = bound_ms(dataset, window[0]), bound_ms(dataset, window[1])
    expected = expected_list(dataset, order, date_from, date_to)
    listed = dataset.page(offset, limit, date_from, date_to)
    assert [(e.index, e.last_updated_ms) for e in listed] == expected[offset : offset + limit]
    assert dataset.count(date_from, date_to) == len(expected)


def test_random_mutations_only_make_the_kinds_asked_for() -> None:
    dataset = Dataset(DatasetSpec(module="tokens", size=200))
    rng = random.Random(3)
    for step in range(300):
        dataset.mutate_randomly(rng, 1_800_000_000_000 + step, ("update", "touch"))
    kinds = {m.kind for m in dataset.mutations}
    assert kinds == {"update", "touch"}
    assert dataset.count() == 200


def test_the_default_mix_is_mostly_updates() -> None:
    dataset = Dataset(DatasetSpec(module="tokens", size=200))
    rng = random.Random(3)
    for step in range(2000):
        dataset.mutate_randomly(rng, 1_800_000_000_000 + step)
    kinds = [m.kind for m in dataset.mutations]
    assert 0.6 < kinds.count("update") / len(kinds) < 0.8
    assert 0.1 < kinds.count("insert") / len(kinds) < 0.2
    assert "touch" not in kinds


@given(per_s=st.floats(0.01, 10_000), elapsed=st.floats(0, 3600), done=st.integers(0, 10**6))
def test_the_schedule_is_floor_of_rate_times_time(per_s: float, elapsed: float, done: int) -> None:
    due = mutations_due(elapsed, per_s)
    assert due <= elapsed * per_s < due + 1
    assert mutations_due(elapsed + 1.0, per_s) >= due
    wait = seconds_until_next(done, elapsed, per_s)
    assert wait >= 0.01
    if done == due:  # never sleeps past the next mutation (beyond the 10 ms floor)
        assert wait <= max(0.01, 1.0 / per_s)


async def first_page(base: str, query: str) -> list[dict[str, Any]]:
    status, body, _ = await get(f"{base}{TOKENS}?{query}", auth_header())
    assert status == 200, body
    data: list[dict[str, Any]] = body["data"]
    return data


async def test_created_order_keeps_an_updated_object_in_place_unless_a_filter_drops_it() -> None:
    async with sandbox(sizes={"tokens": 10}, order="created") as (base, state):
        pinned = "2020-01-01T01:00:00Z"  # after every base object, before the update
        before = await first_page(base, "limit=100")
        state.datasets["tokens"].update(2, int(time.time() * 1000))
        after = await first_page(base, "limit=100")
        pinned_after = await first_page(base, f"date_to={pinned}&limit=100")
        _, _, headers = await get(f"{base}{TOKENS}?date_to={pinned}&limit=3", auth_header())
    uids = [o["uid"] for o in before]
    assert [o["uid"] for o in after] == uids  # same place ...
    assert after[2]["last_updated"] > before[9]["last_updated"]  # ... with a new last_updated
    assert after[2]["whitelist"] != before[2]["whitelist"]  # and new content
    assert [o["uid"] for o in pinned_after] == uids[:2] + uids[3:]  # it left the pinned window
    assert headers["X-Total-Count"] == "9"


async def test_created_order_an_update_can_enter_a_date_from_window_in_the_middle() -> None:
    async with sandbox(sizes={"tokens": 10}, order="created") as (base, state):
        since = "2020-01-01T00:00:05Z"  # objects 5..9
        before = await first_page(base, f"date_from={since}")
        state.datasets["tokens"].update(1, int(time.time() * 1000))
        after = await first_page(base, f"date_from={since}")
    assert len(before) == 5
    dataset_uid = state.datasets["tokens"].factory.token_uid(1)
    assert [o["uid"] for o in after] == [dataset_uid] + [o["uid"] for o in before]


async def test_last_updated_order_moves_an_updated_object_to_the_end() -> None:
    async with sandbox(sizes={"tokens": 10}) as (base, state):
        before = await first_page(base, "limit=100")
        state.datasets["tokens"].update(2, int(time.time() * 1000))
        after = await first_page(base, "limit=100")
    uids = [o["uid"] for o in before]
    assert [o["uid"] for o in after] == uids[:2] + uids[3:] + [uids[2]]


async def wait_for_mutations(state: Any, module: str, count: int) -> None:
    """Wait (without a time limit of its own: pytest's timeout applies) for `count` mutations."""
    while len(state.datasets[module].mutations) < count:
        await asyncio.sleep(0.02)


async def test_mutations_per_second_happen_without_requests_and_repeat_per_seed() -> None:
    logs: list[list[tuple[str, int]]] = []
    for _ in range(2):
        async with sandbox(
            sizes={"tokens": 500, "locations": 50}, mutations_per_s=200.0, seed=11
        ) as (base, state):
            await wait_for_mutations(state, "tokens", 30)
            await wait_for_mutations(state, "locations", 30)
            status, stats, _ = await get(f"{base}/_sandbox/stats")
            logs.append([(m.kind, m.index) for m in state.datasets["tokens"].mutations])
        assert status == 200
        assert stats["objects_served"] == 0  # nobody asked for a page
        assert set(stats["mutations"]) == {"tokens", "locations"}  # empty modules stay still
        assert sum(stats["mutations"]["tokens"].values()) >= 30
    shared = min(len(log) for log in logs)
    assert logs[0][:shared] == logs[1][:shared]


async def test_mutations_per_second_of_one_kind_keep_the_count() -> None:
    async with sandbox(
        sizes={"tokens": 300}, mutations_per_s=300.0, mutation_kinds=("update",)
    ) as (base, state):
        await wait_for_mutations(state, "tokens", 20)
        _, _, headers = await get(f"{base}{TOKENS}?limit=1", auth_header())
    assert {m.kind for m in state.datasets["tokens"].mutations} == {"update"}
    assert headers["X-Total-Count"] == "300"


@pytest.mark.parametrize("order", ["last_updated", "created"])
async def test_ground_truth_stays_exact_while_data_churns(order: ListOrder) -> None:
    async with sandbox(
        sizes={"tokens": 400}, mutations_per_s=100.0, order=order, max_limit=5000
    ) as (base, state):
        dataset = state.datasets["tokens"]
        await wait_for_mutations(state, "tokens", 10)
        pinned_ms = (time.time_ns() // 1_000_000 // 1000 + 1) * 1000  # the next whole second
        while time.time() * 1000 < pinned_ms:
            await asyncio.sleep(0.02)
        await wait_for_mutations(state, "tokens", len(dataset.mutations) + 10)
        pinned = rfc3339(pinned_ms)
        # One page holds everything, and one request is served atomically: a snapshot taken
        # somewhere between these two lengths of the mutation log.
        logged_before = len(dataset.mutations)
        page = await first_page(base, f"date_to={pinned}&limit=5000")
        logged_after = len(dataset.mutations)
        truth = {e.index: e.last_updated_ms for e in dataset.state_at(pinned_ms)}
        _, ndjson, _ = await get(f"{base}/_sandbox/truth?module=tokens&at={pinned}")

    def changed_since_pinned(logged: int) -> set[int]:
        return {m.index for m in dataset.mutations[:logged] if m.at_ms >= pinned_ms}

    assert changed_since_pinned(logged_before)  # the data did change after the pinned instant
    uid_of = {dataset.factory.token_uid(i): i for i in range(400 + len(dataset.mutations))}
    served = {uid_of[o["uid"]]: o["last_updated"] for o in page}
    # Unchanged since the pinned instant <=> still in the pinned window, with the truth's stamp.
    assert set(truth) - changed_since_pinned(logged_after) <= set(served)
    assert set(served) <= set(truth) - changed_since_pinned(logged_before)
    assert all(rfc3339(truth[i]) == lu for i, lu in served.items())
    # The past does not change: the truth read later over HTTP is the same.
    over_http = {r["index"]: r["last_updated"] for r in map(orjson.loads, ndjson.splitlines())}
    assert over_http == {i: rfc3339(ms) for i, ms in truth.items()}


def rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


async def test_stats_report_objects_served_per_module() -> None:
    async with sandbox(sizes={"tokens": 250, "tariffs": 20}, mutation_rate=0.1) as (base, _):
        tokens, _ = await walk_chain(base, f"{TOKENS}?limit=100")
        tariffs, _ = await walk_chain(base, "/ocpi/cpo/2.2.1/tariffs")
        _, stats, _ = await get(f"{base}/_sandbox/stats")
    assert stats["objects_served_by_module"] == {"tokens": len(tokens), "tariffs": len(tariffs)}
    assert stats["objects_served"] == len(tokens) + len(tariffs)
    # One mutation per 10 tokens served (fewer when one hits an already deleted object).
    assert 0 < sum(stats["mutations"]["tokens"].values()) <= len(tokens) // 10
