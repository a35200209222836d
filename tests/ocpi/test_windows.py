"""Window planning and sharding (producer/windows.py), against counts of a known timeline."""

from __future__ import annotations

import bisect
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.ocpi.planning.windows import TimeRange, Window, WindowPlanner, windows_for_shard


def plan(
    timestamps: list[int], start: int | None, end: int, target: int, **kw: int | None
) -> list[Window]:
    """Run the planner against a partner whose objects have these last_updated seconds."""
    ordered = sorted(timestamps)

    def count(window: TimeRange) -> int:
        lo = 0 if window.start is None else bisect.bisect_left(ordered, window.start)
        return bisect.bisect_left(ordered, window.end) - lo

    planner = WindowPlanner(start, end, target, **kw)
    rounds = 0
    while not planner.done:
        rounds += 1
        assert rounds < 1000
        for window in planner.pending():
            planner.record(window, count(window))
    budget = kw.get("budget")
    if budget is not None:
        assert planner.probes <= budget
    windows = planner.windows()
    for window in windows:
        assert window.expected == count(TimeRange(window.end, window.start))
    return windows


def assert_tiles(windows: list[Window], start: int | None, end: int) -> None:
    assert windows[0].start == start
    assert windows[-1].end == end
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
    assert [w.index for w in windows] == list(range(len(windows)))


@settings(max_examples=300, deadline=None)
@given(
    stamps=st.lists(st.integers(1_000_000, 1_100_000), max_size=400),
    target=st.integers(1, 60),
    open_start=st.booleans(),
    hint=st.one_of(st.none(), st.integers(900_000, 1_200_000)),
    end_hint=st.one_of(st.none(), st.integers(900_000, 1_200_000)),
)
def test_windows_tile_the_range_and_respect_the_target(
    stamps: list[int], target: int, open_start: bool, hint: int | None, end_hint: int | None
) -> None:
    # Any hints, right or wrong, give a correct plan: they only place the cuts.
    start = None if open_start else 1_000_000
    end = 1_100_001
    hints = {"start_hint": hint, "end_hint": end_hint}
    windows = plan(stamps, start, end, target, **{k: v for k, v in hints.items() if v is not None})
    assert_tiles(windows, start, end)
    assert sum(w.expected for w in windows) == len(stamps)
    per_second = {s: stamps.count(s) for s in stamps}
    for window in windows:
        if window.expected > target:
            # Only a window that cannot be split further may exceed the target.
            inside = {s for s in per_second if (window.start or 0) <= s < window.end}
            assert len(inside) == 1


def test_small_pull_is_one_window() -> None:
    windows = plan(list(range(100, 150)), None, 1000, 1000)
    assert windows == [Window(0, None, 1000, 50)]


def test_skewed_data_is_split_where_the_objects_are() -> None:
    # 10 old objects, then 1000 objects in the last 1000 seconds.
    stamps = list(range(10)) + list(range(99_000, 100_000))
    windows = plan(stamps, None, 100_000, 100)
    assert_tiles(windows, None, 100_000)
    assert all(w.expected <= 100 for w in windows)
    assert 10 <= len(windows) <= 13


def probes_for(stamps: list[int], end: int, target: int, **hints: int) -> tuple[int, int]:
    """Probes the planner needs for an open-start pull of these objects, and the windows."""
    ordered = sorted(stamps)
    planner = WindowPlanner(None, end, target, **hints)
    probes = 0
    while not planner.done:
        for window in planner.pending():
            lo = 0 if window.start is None else bisect.bisect_left(ordered, window.start)
            planner.record(window, bisect.bisect_left(ordered, window.end) - lo)
            probes += 1
    return probes, len(planner.windows())


def test_the_newest_object_keeps_the_cuts_where_the_objects_are() -> None:
    # 100,000 objects over one day, seven years before date_to (a partner whose data stopped
    # changing long ago): from the oldest alone the planner zooms in five parts per level.
    day, end = 86_400, 1_000_000_000
    first = end - 7 * 365 * day
    stamps = [first + i * day // 100_000 for i in range(100_000)]
    oldest_only = probes_for(stamps, end, 20_000, start_hint=first)
    both = probes_for(stamps, end, 20_000, start_hint=first, end_hint=stamps[-1])
    assert both[1] == 5  # 20,000 objects each
    assert both[0] <= 8 < oldest_only[0]


def test_objects_older_than_the_hint_are_found() -> None:
    stamps = list(range(500))
    windows = plan(stamps, None, 10_000_000, 100, start_hint=9_000_000)
    assert all(w.expected <= 100 for w in windows)
    assert sum(w.expected for w in windows) == 500


def test_a_second_with_more_than_the_target_stays_one_window() -> None:
    windows = plan([5000] * 300 + [6000], 0, 10_000, 100)
    assert max(w.expected for w in windows) == 300
    assert sum(w.expected for w in windows) == 301


def test_partner_that_ignores_date_filters_gets_one_window() -> None:
    planner = WindowPlanner(None, 10_000, 100)
    while not planner.done:
        for window in planner.pending():
            planner.record(window, 1000)  # every window "holds" everything
    assert planner.windows() == [Window(0, None, 10_000, 1000)]
    assert planner.filters_ignored


def test_shards_split_the_windows_evenly_and_completely() -> None:
    windows = [Window(i, i * 10, i * 10 + 10, 5) for i in range(10)]
    shards = [windows_for_shard(windows, i, 3) for i in range(3)]
    assert sorted(w.index for shard in shards for w in shard) == list(range(10))
    assert [len(s) for s in shards] == [4, 3, 3]
    with pytest.raises(ValueError, match="does not exist"):
        windows_for_shard(windows, 3, 3)


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        WindowPlanner(10, 10, 5)
    with pytest.raises(ValueError, match="positive"):
        WindowPlanner(0, 10, 0)


@settings(max_examples=200, deadline=None)
@given(
    timestamps=st.lists(st.integers(0, 10**9), min_size=1, max_size=3000),
    target=st.integers(1, 500),
    hints=st.tuples(st.none() | st.integers(0, 10**9), st.none() | st.integers(0, 10**9)),
)
def test_planning_never_asks_more_than_its_budget(
    timestamps: list[int], target: int, hints: tuple[int | None, int | None]
) -> None:
    """Whatever the data and whatever the hints (an unordered list's two ends are any two
    objects), planning asks at most two counts per window it needs and 16, and still tiles the
    range with every object counted once."""
    end = 10**9 + 1
    budget = 2 * -(-len(timestamps) // target) + 16
    windows = plan(
        timestamps, None, end, target, start_hint=hints[0], end_hint=hints[1], budget=budget
    )  # plan() checks the probes against the budget
    assert_tiles(windows, None, end)
    assert sum(w.expected for w in windows) == len(timestamps)
