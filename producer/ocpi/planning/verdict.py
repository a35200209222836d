"""Whether a window's walk got every object the partner reported: the one completeness rule. Pure.

Every reader of pages (the pull's window loop, the public `PullClient`, the tombstone catch-up
read) judges its walk here. The walk itself guarantees that a verified chain of pages reached the
last page; this adds the count check: the distinct objects received must reach the window's first
`X-Total-Count` (less where the walk started, on a resume), unless the partner itself reported the
window shrinking by at least the difference (objects updated past `date_to` or deleted).
"""

from __future__ import annotations

from dataclasses import dataclass

from producer.ocpi.paging.pagination import WindowWalk

MAX_WINDOW_PASSES = 3


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """How a walk over one window ended."""

    complete: bool
    expected: int  # objects the first total promised from where the walk started
    shortfall: int  # distinct objects missing against `expected` (maybe explained by shrinkage)
    problem: str | None = None

    @property
    def unexplained_shortfall(self) -> int:
        """What is missing and not explained: 0 for a complete window."""
        return 0 if self.complete else self.shortfall


def judge_window(
    *,
    walk_complete: bool,
    first_total: int | None,
    latest_total: int | None,
    start_offset: int,
    received: int,
    problem: str | None = None,
    rereading_part: bool = False,
) -> WindowVerdict:
    """Judge one walk: `received` distinct objects (valid or not) since `start_offset`.

    Re-reading part of a window (`rereading_part`, after a broker outage) is judged by the chain
    only: the window's counts were judged by its first reading.
    """
    expected = max(0, (first_total or 0) - start_offset)
    shortfall = 0 if rereading_part else max(0, expected - received)
    explained = latest_total is not None and received >= max(0, latest_total - start_offset)
    complete = problem is None and walk_complete and (shortfall == 0 or explained)
    return WindowVerdict(complete, expected, shortfall, problem)


def judge_walk(
    walk: WindowWalk,
    *,
    received: int,
    start_offset: int = 0,
    problem: str | None = None,
    rereading_part: bool = False,
) -> WindowVerdict:
    """Judge a walk by its chain and totals (`judge_window`), `received` distinct objects
    since `start_offset`."""
    return judge_window(
        walk_complete=walk.complete,
        first_total=walk.first_total,
        latest_total=walk.latest_total,
        start_offset=start_offset,
        received=received,
        problem=problem,
        rereading_part=rereading_part,
    )


def read_again(verdict: WindowVerdict, first_total: int | None, passes: int) -> bool:
    """Whether a window that fell short is worth reading again from its start.

    Only an unexplained shortfall is: when the partner's own total shrank by at least what is
    missing, the objects left the window (updated past `date_to`, or deleted) and the chain rule
    already proved nothing present was skipped; reading the window again would only serve it
    again (churn would then cost a whole window per change)."""
    return (
        verdict.problem is None
        and verdict.unexplained_shortfall > 0
        and first_total is not None
        and passes < MAX_WINDOW_PASSES
    )
