"""The verdicts, pure: one window's completeness (`producer.ocpi.planning.verdict`), the pull's
(`producer.pull.verdict.judge_pull`), and what to re-read after a broker outage
(`replay_before_outages`).
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from producer.errors import IncompletePullError
from producer.ocpi.planning.verdict import (
    MAX_WINDOW_PASSES,
    WindowVerdict,
    judge_window,
    read_again,
)
from producer.pull.verdict import AckMark, Replay, WindowResult, judge_pull, replay_before_outages

LOOP = "repeated_link: the partner's next link repeats an earlier one"

# -- one window ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("walk", "first", "latest", "start", "received", "problem", "stretch", "verdict"),
    [
        # Every object the first total promised.
        (True, 100, 100, 0, 100, None, False, WindowVerdict(True, 100, 0)),
        # More than promised (insertions, a step-back's duplicates): still complete.
        (True, 100, 100, 0, 120, None, False, WindowVerdict(True, 100, 0)),
        # Short, and the partner never said the window shrank: incomplete.
        (True, 100, 100, 0, 90, None, False, WindowVerdict(False, 100, 10)),
        # Short by exactly what the partner reported leaving (updated past date_to, deleted).
        (True, 100, 90, 0, 90, None, False, WindowVerdict(True, 100, 10)),
        # Short by more than the window shrank.
        (True, 100, 95, 0, 90, None, False, WindowVerdict(False, 100, 10)),
        # Resumed at 40: only the rest is expected of this walk.
        (True, 100, 100, 40, 60, None, False, WindowVerdict(True, 60, 0)),
        (True, 100, 100, 40, 50, None, False, WindowVerdict(False, 60, 10)),
        (True, 100, 90, 40, 50, None, False, WindowVerdict(True, 60, 10)),
        # The list shrank below the resume point: nothing is expected any more.
        (True, 30, 30, 40, 0, None, False, WindowVerdict(True, 0, 0)),
        # The chain never reached the last page: counts cannot make up for that.
        (False, 100, 100, 0, 100, None, False, WindowVerdict(False, 100, 0)),
        # A pagination problem ends the window incomplete whatever the counts.
        (True, 100, 100, 0, 100, LOOP, False, WindowVerdict(False, 100, 0, LOOP)),
        # No X-Total-Count: the chain alone decides.
        (True, None, None, 0, 0, None, False, WindowVerdict(True, 0, 0)),
        (False, None, None, 0, 7, None, False, WindowVerdict(False, 0, 0)),
        # Short with no total on the later pages: nothing explains it.
        (True, 100, None, 0, 90, None, False, WindowVerdict(False, 100, 10)),
        # A replay stretch is judged by its chain only (its counts were judged the first time).
        (True, 100, 100, 0, 10, None, True, WindowVerdict(True, 100, 0)),
        (False, 100, 100, 0, 10, None, True, WindowVerdict(False, 100, 0)),
        (True, 100, 100, 0, 10, LOOP, True, WindowVerdict(False, 100, 0, LOOP)),
    ],
)
def test_when_a_window_is_complete(
    walk: bool,
    first: int | None,
    latest: int | None,
    start: int,
    received: int,
    problem: str | None,
    stretch: bool,
    verdict: WindowVerdict,
) -> None:
    judged = judge_window(
        walk_complete=walk,
        first_total=first,
        latest_total=latest,
        start_offset=start,
        received=received,
        problem=problem,
        rereading_part=stretch,
    )
    assert judged == verdict
    assert judged.unexplained_shortfall == (0 if judged.complete else judged.shortfall)


@pytest.mark.parametrize(
    ("verdict", "first_total", "passes", "again"),
    [
        (WindowVerdict(False, 100, 10), 100, 1, True),
        (WindowVerdict(False, 100, 10), 100, MAX_WINDOW_PASSES - 1, True),
        (WindowVerdict(False, 100, 10), 100, MAX_WINDOW_PASSES, False),  # bounded
        (WindowVerdict(False, 100, 0, LOOP), 100, 1, False),  # a loop is not cured by re-reading
        (WindowVerdict(False, 100, 10, LOOP), 100, 1, False),
        (WindowVerdict(True, 100, 0), 100, 1, False),  # nothing missing
        (WindowVerdict(False, 0, 0), None, 1, False),  # no total: nothing to fall short of
        # A shortfall the shrinkage explains is not read again: the chain rule already proved
        # nothing present was skipped, and a re-read would only serve the window twice.
        (WindowVerdict(True, 100, 10), 100, 1, False),
    ],
)
def test_when_a_short_window_is_read_again(
    verdict: WindowVerdict, first_total: int | None, passes: int, again: bool
) -> None:
    assert read_again(verdict, first_total, passes) is again


counts = st.integers(min_value=0, max_value=10_000)
maybe_counts = st.none() | counts
problems = st.none() | st.sampled_from([LOOP, "no_progress: kept shrinking"])


@given(
    walk=st.booleans(),
    first=maybe_counts,
    latest=maybe_counts,
    start=counts,
    received=counts,
    problem=problems,
    stretch=st.booleans(),
)
def test_a_window_verdict_follows_its_rule(
    walk: bool,
    first: int | None,
    latest: int | None,
    start: int,
    received: int,
    problem: str | None,
    stretch: bool,
) -> None:
    verdict = judge_window(
        walk_complete=walk,
        first_total=first,
        latest_total=latest,
        start_offset=start,
        received=received,
        problem=problem,
        rereading_part=stretch,
    )
    expected = max(0, (first or 0) - start)
    assert verdict.expected == expected
    assert verdict.shortfall == (0 if stretch else max(0, expected - received))
    assert verdict.problem == problem
    if verdict.complete:
        # Never complete without a whole chain and without a problem, and never owing anything.
        assert walk
        assert problem is None
        assert verdict.unexplained_shortfall == 0
    if walk and problem is None and received >= expected:
        assert verdict.complete
    if verdict.complete and not stretch:
        # More objects never make a complete window incomplete.
        more = judge_window(
            walk_complete=walk,
            first_total=first,
            latest_total=latest,
            start_offset=start,
            received=received + 1,
            problem=problem,
        )
        assert more.complete


@given(
    walk=st.booleans(),
    first=maybe_counts,
    latest=maybe_counts,
    received=counts,
    problem=problems,
)
def test_re_reading_a_window_always_ends(
    walk: bool, first: int | None, latest: int | None, received: int, problem: str | None
) -> None:
    verdict = judge_window(
        walk_complete=walk,
        first_total=first,
        latest_total=latest,
        start_offset=0,
        received=received,
        problem=problem,
    )
    passes = 1
    while read_again(verdict, first, passes):
        assert verdict.problem is None
        assert verdict.shortfall > 0
        passes += 1
    assert passes <= MAX_WINDOW_PASSES


# -- the pull --------------------------------------------------------------------------------


def result(
    index: int, complete: bool = True, shortfall: int = 0, problem: str | None = None
) -> WindowResult:
    return WindowResult(index, complete, 10, 10, 10, shortfall, 1, problem)


def test_a_planned_window_without_a_result_fails_the_pull() -> None:
    with pytest.raises(
        IncompletePullError, match=r"2 window\(s\) ended without a result: \[1, 3\]"
    ):
        judge_pull([result(0), result(2)], range(4))


def test_planned_windows_may_come_as_a_generator() -> None:
    planned = (i for i in (0, 1))  # as flow.py passes them
    assert judge_pull([result(1), result(0)], planned).complete


def test_a_pull_is_complete_only_if_every_window_is() -> None:
    assert judge_pull([result(0), result(1)], [0, 1]) == judge_pull([], [])
    verdict = judge_pull([result(0), result(1, False, 7), result(2)], [0, 1, 2])
    assert not verdict.complete
    assert verdict.windows_incomplete == 1
    assert verdict.shortfall == 7


def test_shortfalls_add_up_and_problems_are_listed_once_in_order() -> None:
    results = [
        result(0, False, 3, "b"),
        result(1, False, 0, "a"),
        result(2, True),
        result(3, False, 5, "b"),
        result(4, False, 1),
        result(5, False, 0, "c"),
    ]
    verdict = judge_pull(results, range(6))
    assert verdict.shortfall == 9
    assert verdict.windows_incomplete == 5
    assert verdict.problems == ("b", "a", "c")


window_results = st.lists(
    st.builds(
        result,
        index=st.integers(0, 30),
        complete=st.booleans(),
        shortfall=st.integers(0, 1000),
        problem=st.none() | st.sampled_from(["a", "b", "c"]),
    ),
    max_size=20,
)


@given(results=window_results, planned=st.sets(st.integers(0, 30), max_size=20))
def test_the_pull_verdict_follows_its_windows(
    results: list[WindowResult], planned: set[int]
) -> None:
    reported = {r.index for r in results}
    if not planned <= reported:
        with pytest.raises(IncompletePullError):
            judge_pull(results, planned)
        return
    verdict = judge_pull(results, planned)
    incomplete = [r for r in results if not r.complete]
    assert verdict.complete == (not incomplete)
    assert verdict.windows_incomplete == len(incomplete)
    assert verdict.shortfall == sum(r.shortfall for r in incomplete)
    problems = [r.problem for r in incomplete if r.problem]
    assert set(verdict.problems) == set(problems)
    assert len(verdict.problems) == len(set(verdict.problems))
    assert sorted(verdict.problems, key=problems.index) == list(verdict.problems)


# -- replay after a broker outage ------------------------------------------------------------


def marks(*rows: tuple[float, int, int | None, int]) -> tuple[AckMark, ...]:
    """An ack history from (time, position, total, furthest) rows."""
    return tuple(AckMark(*row) for row in rows)


def test_a_replay_before_outages_ends_at_the_furthest_page_acknowledged() -> None:
    # Fan-out: the page ending at 900 was acknowledged while the checkpoint waited at 300.
    history = marks((80.0, 0, None, 0), (94.0, 300, 3000, 900), (99.0, 300, 3000, 1200))
    assert replay_before_outages(history, [96.0], 5.0) == Replay(0, None, 900)


@pytest.mark.parametrize(
    ("outages", "expected"),
    [
        ([], None),
        # Noticed at 100: suspect from 95 (position 300) up to what was acked by 100 (600).
        ([100.0], Replay(300, 3000, 600)),
        ([97.0], Replay(100, 3000, 300)),  # suspect from 92 (100) to 97 (300)
        ([91.0], Replay(0, None, 100)),  # suspect from 86: only the start was acked by then
        ([50.0], None),  # nothing was acknowledged in the suspect time
        ([200.0], None),  # the window finished long before the outage
        ([100.0, 91.0], Replay(0, None, 600)),  # the union of both stretches
    ],
)
def test_replay_before_outages(outages: list[float], expected: Replay | None) -> None:
    history = marks(
        (80.0, 0, None, 0),
        (90.0, 100, 3000, 100),
        (94.0, 300, 3000, 300),
        (99.0, 600, 2998, 600),
    )
    assert replay_before_outages(history, outages, 5.0) == expected
    assert replay_before_outages(history, outages, 0.0) is None


@st.composite
def ack_histories(draw: st.DrawFn, *, ahead: bool = True) -> tuple[AckMark, ...]:
    """A window's ack history as WindowPull records it: the start mark, then one mark per page
    acknowledged (time and checkpoint position never go back; with fan-out a page beyond the
    checkpoint can be acknowledged first, so the furthest end runs ahead of the position)."""
    t = draw(st.integers(0, 100))
    position = draw(st.integers(0, 1000))
    total = draw(st.none() | st.integers(0, 5000))
    history: list[AckMark] = [AckMark(float(t), position, total, position)]
    furthest = position
    for _ in range(draw(st.integers(0, 12))):
        t += draw(st.integers(0, 10))
        position += draw(st.integers(0, 300))
        furthest = max(furthest, position + (draw(st.integers(0, 300)) if ahead else 0))
        total = draw(st.none() | st.integers(0, 5000))
        history.append(AckMark(float(t), position, total, furthest))
    return tuple(history)


outage_times = st.lists(st.integers(0, 250).map(float), max_size=4)
replay_seconds = st.integers(1, 20).map(float)


def suspect_acks(history: tuple[AckMark, ...], outage: float, replay_s: float) -> list[AckMark]:
    """Acknowledgements within `replay_s` before the outage (the first mark is the start)."""
    return [mark for mark in history[1:] if outage - replay_s < mark.at <= outage]


def position_at(history: tuple[AckMark, ...], instant: float) -> int:
    return ([m for m in history if m.at <= instant] or [history[0]])[-1].position


@given(history=ack_histories(), outages=outage_times, replay_s=replay_seconds)
def test_a_replay_before_outages_covers_every_suspect_acknowledgement(
    history: tuple[AckMark, ...], outages: list[float], replay_s: float
) -> None:
    stretch = replay_before_outages(history, outages, replay_s)
    for outage in outages:
        suspect = suspect_acks(history, outage, replay_s)
        start = position_at(history, outage - replay_s)
        if not suspect or max(m.furthest for m in suspect) <= start:
            continue  # nothing new was acknowledged in the suspect time
        assert stretch is not None
        # It starts at or before every position acknowledged in the suspect time...
        assert stretch.offset <= start <= min(m.position for m in suspect)
        # ...and reaches the end of every page acknowledged then.
        assert stretch.stop_at >= max(m.furthest for m in suspect)
    if stretch is not None:
        # A resume point the window really had (with its total), never before the window's start.
        assert (stretch.offset, stretch.total) in {(m.position, m.total) for m in history}
        assert history[0].position <= stretch.offset < stretch.stop_at


@given(history=ack_histories(ahead=False), outages=outage_times, replay_s=replay_seconds)
def test_no_replay_when_nothing_was_acknowledged_in_the_suspect_time(
    history: tuple[AckMark, ...], outages: list[float], replay_s: float
) -> None:
    assume(not any(suspect_acks(history, outage, replay_s) for outage in outages))
    assert replay_before_outages(history, outages, replay_s) is None


def test_no_replay_for_a_page_acknowledged_ahead_long_before_the_outage() -> None:
    # At 90 the page ending at 300 was acknowledged ahead of the checkpoint (100); the next
    # acknowledgement came at 150. The outage at 120 suspects 115..120: nothing was acked then.
    history = marks((80.0, 0, None, 0), (90.0, 100, 3000, 300), (150.0, 400, 3000, 400))
    assert replay_before_outages(history, [120.0], 5.0) is None


@given(history=ack_histories(), outages=outage_times, replay_s=replay_seconds)
def test_the_stretch_of_many_outages_covers_each_ones(
    history: tuple[AckMark, ...], outages: list[float], replay_s: float
) -> None:
    together = replay_before_outages(history, outages, replay_s)
    for outage in outages:
        alone = replay_before_outages(history, [outage], replay_s)
        if alone is not None:
            assert together is not None
            assert together.offset <= alone.offset
            assert together.stop_at >= alone.stop_at


@given(history=ack_histories(), outages=outage_times)
def test_no_replay_without_a_replay_time(
    history: tuple[AckMark, ...], outages: list[float]
) -> None:
    assert replay_before_outages(history, outages, 0.0) is None
    assert replay_before_outages((), outages, 5.0) is None
