"""Planning date windows on `last_updated`, and sharing them between shards. Pure functions.

A full pull covers `[date_from, date_to)` with `date_to` pinned at the start. The planner asks for
object counts of candidate windows (the shell answers each with a `limit=1` request and its
`X-Total-Count`), splits windows holding more than the target, then merges neighbours back while
they fit, so every window holds at most `target` objects (unless a single second holds more).
Windows are half-open and tile the range exactly, as OCPI 2.2.1 intends (`date_from` inclusive,
`date_to` exclusive). Times are whole epoch seconds: we always send `YYYY-MM-DDTHH:MM:SSZ`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

SECONDS_PER_DAY = 86_400
MAX_SPLIT_PARTS = 64
MAX_PROBES = 20_000
# The first geometric cut lies this far after the oldest object seen (then 4×, 16×, ...).
GEOMETRIC_FROM_S = 60


@dataclass(frozen=True, slots=True, order=True)
class TimeRange:
    """`[start, end)` in epoch seconds; `start=None` means no lower bound (no `date_from`)."""

    end: int
    start: int | None = None

    @property
    def width(self) -> int | None:
        """Seconds covered, or None for an open start."""
        return None if self.start is None else self.end - self.start


@dataclass(frozen=True, slots=True)
class Window:
    """One planned window of a pull: its position, bounds and the count probed when planning."""

    index: int
    start: int | None
    end: int
    expected: int


class WindowPlanner:
    """Splits a range until every window holds at most `target` objects, from probed counts.

    Drive it with `pending()` (ranges that need a count) and `record()`; when `done`, read
    `windows()`. `start_hint` (e.g. the oldest `last_updated` seen) places the first split points
    of an open-start range; without it, splitting starts a year back and widens as needed.
    `end_hint` (e.g. the newest `last_updated` seen) keeps the split points where the objects
    are: a range reaching past it is cut there first, so data that ends years before `date_to`
    is not zoomed into level by level. Hints only place cuts: any hint gives a correct plan.
    """

    def __init__(
        self,
        start: int | None,
        end: int,
        target: int,
        *,
        start_hint: int | None = None,
        end_hint: int | None = None,
        budget: int | None = None,
        parts_per_target: float = 1.0,
        most_parts: int = MAX_SPLIT_PARTS,
    ) -> None:
        if target <= 0:
            raise ValueError("window target must be positive")
        if start is not None and start >= end:
            raise ValueError("date_from must be before date_to")
        self.target = target
        self._pending: list[TimeRange] = [TimeRange(end, start)]
        self._probed: dict[TimeRange, int] = {}
        self._final: dict[TimeRange, int] = {}
        self._children: dict[TimeRange, list[TimeRange]] = {}
        self._probes = 0
        default_start = end - 365 * SECONDS_PER_DAY
        hint = default_start if start_hint is None else min(start_hint, end - 1)
        self._start_hinted = start_hint is not None and start_hint < end - 1
        self._open_start_nominal = max(0, hint)
        self._end_hint = end_hint
        self.filters_ignored = False
        self._root = TimeRange(end, start)
        # The most counts planning may ask (None: MAX_PROBES): a range whose parts would need
        # more stays one window, however large (a window reads fine; only its size grows).
        self._budget = MAX_PROBES if budget is None else max(1, budget)
        # A range holding n targets' worth is cut into n × this many parts (more than one: each
        # part likely fits at once, rather than being cut again), at most `most_parts`.
        self._parts_per_target = parts_per_target
        self._most_parts = most_parts

    @property
    def probes(self) -> int:
        """Counts recorded so far."""
        return self._probes

    @property
    def done(self) -> bool:
        """Every range has a count and no range needs splitting."""
        return not self._pending

    def pending(self) -> list[TimeRange]:
        """Ranges whose object count is needed now (each one `limit=1` request)."""
        return list(self._pending)

    def record(self, window: TimeRange, count: int) -> None:
        """The partner's `X-Total-Count` for `window`."""
        self._pending.remove(window)
        self._probes += 1
        self._probed[window] = count
        if count <= self.target or self._probes >= self._budget:
            self._final[window] = count
            return
        # Parts need a count each: never more than planning may still ask.
        room = self._budget - self._probes - len(self._pending)
        parts = self._split(window, count, room) if room >= 2 else None
        if parts is None:
            # A single second holds more than the target, or planning may ask no more.
            self._final[window] = count
            return
        self._children[window] = parts
        self._pending.extend(parts)

    def _split(self, window: TimeRange, count: int, most: int) -> list[TimeRange] | None:
        start = window.start
        if start is None and window != self._root:
            # Objects older than the oldest one seen (its list is in no order): cuts reaching
            # back fourfold from the range's end find how far, in one round of counts.
            return self._geometric_back(window, most)
        if start is None:
            # An open start has no width; split from a nominal start, pushed further back when
            # the objects turn out to be older than it.
            while window.end - self._open_start_nominal <= 1 and self._open_start_nominal > 0:
                span = max(window.end - self._open_start_nominal, SECONDS_PER_DAY)
                self._open_start_nominal = max(0, self._open_start_nominal - 4 * span)
            nominal = self._open_start_nominal
            if window.end - nominal <= 1:
                return None
        else:
            nominal = start
            if window.end - start <= 1:
                return None
        wanted = math.ceil(count * self._parts_per_target / self.target)
        parts = min(self._most_parts, most, max(2, wanted))
        if (
            window == self._root
            and self._end_hint is None
            and self._start_hinted
            and window.end - nominal > GEOMETRIC_FROM_S * 4 * parts
        ):
            # Objects lie from the oldest one seen on, but how far is unknown (no newest one):
            # cuts growing fourfold from it find their extent in one round of counts, where
            # even cuts over years would zoom in level by level.
            return self._geometric(window, nominal, most)
        # Past the newest object seen there should be (next to) nothing: one part of its own.
        last = window.end
        if self._end_hint is not None and nominal < self._end_hint + 1 < window.end:
            last = self._end_hint + 1
        width = last - nominal
        if last < window.end:
            parts = min(parts, most - 1)  # the part past the newest object needs a count too
        parts = max(1, min(parts, width))
        cuts = [nominal + (width * k) // parts for k in range(1, parts)]
        if last < window.end:
            cuts.append(last)
        bounds: list[int | None] = [start, *cuts]
        ends = [*cuts, window.end]
        return [TimeRange(e, s) for s, e in zip(bounds, ends, strict=True)]

    def _geometric(self, window: TimeRange, nominal: int, most: int) -> list[TimeRange] | None:
        cuts: list[int] = []
        step = GEOMETRIC_FROM_S
        while nominal + step < window.end and len(cuts) + 1 < most:
            cuts.append(nominal + step)
            step *= 4
        if not cuts:
            return None
        bounds: list[int | None] = [window.start, *cuts]
        ends = [*cuts, window.end]
        return [TimeRange(e, s) for s, e in zip(bounds, ends, strict=True)]

    def _geometric_back(self, window: TimeRange, most: int) -> list[TimeRange] | None:
        cuts: list[int] = []
        step = GEOMETRIC_FROM_S
        while window.end - step > 0 and len(cuts) + 1 < most:
            cuts.append(window.end - step)
            step *= 4
        if not cuts:
            return None
        cuts.reverse()
        bounds: list[int | None] = [None, *cuts]
        ends = [*cuts, window.end]
        return [TimeRange(e, s) for s, e in zip(bounds, ends, strict=True)]

    def _filters_ignored(self) -> bool:
        # Parts of a range must not hold more than the range: if they do, the partner ignores
        # date filters and every window would pull everything. Updates during planning only move
        # objects past date_to, so a small excess is noise; a large one is not.
        return any(
            sum(self._probed[part] for part in parts) > self._probed[parent] * 1.01 + 10
            for parent, parts in self._children.items()
        )

    def windows(self) -> list[Window]:
        """The plan: consecutive windows tiling the range, each within the target if possible.

        If the partner ignores date filters, the plan is one window over the whole range.
        """
        if not self.done:
            raise RuntimeError("planning is not finished")
        self.filters_ignored = self._filters_ignored()
        if self.filters_ignored:
            return [Window(0, self._root.start, self._root.end, self._probed[self._root])]
        ordered = sorted(self._final.items(), key=lambda item: _sort_key(item[0]))
        merged: list[tuple[int | None, int, int]] = []
        for window, count in ordered:
            if merged and merged[-1][2] + count <= self.target:
                start, _, subtotal = merged[-1]
                merged[-1] = (start, window.end, subtotal + count)
            else:
                merged.append((window.start, window.end, count))
        return [Window(i, start, end, count) for i, (start, end, count) in enumerate(merged)]


def _sort_key(window: TimeRange) -> tuple[int, int]:
    return (-1 if window.start is None else window.start, window.end)


class Indexed(Protocol):
    """Anything with a window index (planned windows, plan records)."""

    @property
    def index(self) -> int: ...


IndexedT = TypeVar("IndexedT", bound=Indexed)


def windows_for_shard(
    windows: Sequence[IndexedT], shard_index: int, shard_count: int
) -> list[IndexedT]:
    """The windows shard `shard_index` of `shard_count` pulls: every n-th, so sizes stay even."""
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise ValueError(f"shard {shard_index} of {shard_count} does not exist")
    return [w for w in windows if w.index % shard_count == shard_index]
