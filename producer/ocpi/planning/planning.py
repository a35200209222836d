"""Planning a pull's windows: `limit=1` count probes driven by the pure `WindowPlanner`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from yarl import URL

from producer.errors import PartnerAuthError, PartnerProtocolError, PartnerUnavailableError
from producer.ocpi.paging.reader import PageReader
from producer.ocpi.planning.windows import MAX_SPLIT_PARTS, TimeRange, WindowPlanner
from producer.ocpi.protocol.query import from_epoch, page_url, to_epoch
from producer.ocpi.protocol.responses import FetchedPage
from schemas.records import WindowSpec


@dataclass(frozen=True, slots=True)
class PlannedWindows:
    """The windows, and what planning learnt about the partner."""

    windows: list[WindowSpec]
    # Without `X-Total-Count` there is nothing to split by: one window, no count checks.
    totals_reported: bool
    # Date-filtered counts came back as the unfiltered total: the partner ignores the filters.
    filters_ignored: bool
    # The `limit=1` requests planning made (bounded by `planning_budget`).
    requests: int = 0


Probe = Callable[[URL], Awaitable[FetchedPage]]

# The probe for the list's newest object only places cuts: planning goes on without it.
HINT_PROBE_TIMEOUT_S = 10.0
HINT_PROBE_FAILURES = (
    PartnerProtocolError,
    PartnerAuthError,
    PartnerUnavailableError,
    TimeoutError,
)


async def plan_windows(
    probe: Probe,
    endpoint: URL,
    *,
    module: str,
    ocpi_version: str,
    date_from: datetime | None,
    date_to: datetime,
    window_size: int,
    parallel: int,
    span: tuple[int, int] | None = None,
    parts_per_target: float = 1.0,
) -> PlannedWindows:
    """Windows for `[date_from, date_to)` from `limit=1` count probes. `span`: the oldest and
    newest last_updated (epoch seconds) known to be in it, for hints, instead of asking the
    list's two ends (which say nothing of a list in no order)."""

    def url(window: TimeRange, offset: int = 0) -> URL:
        return page_url(
            endpoint,
            module=module,
            ocpi_version=ocpi_version,
            date_from=from_epoch(window.start),
            date_to=from_epoch(window.end) or date_to,
            offset=offset,
            limit=1,
            overlap_211=False,
        )

    start, end = to_epoch(date_from), to_epoch(date_to)
    assert end is not None
    root = TimeRange(end, start)
    first = await probe(url(root))
    requests = 1
    if first.total is None:
        only = WindowSpec(index=0, date_from=date_from, date_to=date_to, expected=0)
        return PlannedWindows([only], totals_reported=False, filters_ignored=False, requests=1)
    oldest: int | None
    newest: int | None
    if span is not None:
        oldest, newest = span
    else:
        last = first.total - 1
        deep = (lambda: probe(url(root, last))) if first.total > window_size else None
        requests += deep is not None
        oldest, newest = await list_ends(first, deep, PageReader(ocpi_version, module, None))
    planner = WindowPlanner(
        start,
        end,
        window_size,
        start_hint=oldest,
        end_hint=newest,
        budget=planning_budget(first.total, window_size) - requests + 1,
        parts_per_target=parts_per_target,
        most_parts=MAX_SPLIT_PARTS if parts_per_target == 1.0 else 4 * MAX_SPLIT_PARTS,
    )
    planner.record(root, first.total)
    slots = asyncio.Semaphore(parallel)

    async def count(window: TimeRange) -> tuple[TimeRange, int]:
        async with slots:
            page = await probe(url(window))
        # A partner that stops reporting totals mid-planning: treat the window as unsplittable.
        return window, page.total if page.total is not None else 0

    while not planner.done:
        for window, total in await asyncio.gather(*(count(w) for w in planner.pending())):
            planner.record(window, total)
    return PlannedWindows(
        window_specs(planner, date_to),
        totals_reported=True,
        filters_ignored=planner.filters_ignored,
        requests=requests + planner.probes - 1,  # the first count is the planner's first
    )


def window_specs(planner: WindowPlanner, date_to: datetime) -> list[WindowSpec]:
    """The planner's windows as the plan records them."""
    return [
        WindowSpec(
            index=w.index,
            date_from=from_epoch(w.start),
            date_to=from_epoch(w.end) or date_to,
            expected=w.expected,
        )
        for w in planner.windows()
    ]


async def list_ends(
    first: FetchedPage,
    deep: Callable[[], Awaitable[FetchedPage]] | None,
    reader: PageReader,
) -> tuple[int | None, int | None]:
    """Where a list's objects lie: the oldest and newest `last_updated` its two ends show (the
    first page's object, and `deep()`'s, the last one). Most partners list by last_updated (or
    its reverse), so the two bound the objects; if not, they only cost a few more counts. A
    partner that refuses the deep request, fails it or takes more than HINT_PROBE_TIMEOUT_S
    (deep offsets are what windows avoid) is planned without it. A first object newer than the
    last: the list is in no such order, and the ends bound nothing; the oldest of the two still
    places the first cuts where objects are. (Only last_updated is read: no keys needed.)"""
    hints = [first_last_updated(first, reader)]
    if deep is not None:
        with contextlib.suppress(*HINT_PROBE_FAILURES):
            async with asyncio.timeout(HINT_PROBE_TIMEOUT_S):
                hints.append(first_last_updated(await deep(), reader))
    seen = [hint for hint in hints if hint is not None]
    if len(seen) == 2 and seen[0] <= seen[1]:
        return seen[0], seen[1]
    return min(seen, default=None), None


def planning_budget(total: int, window_size: int) -> int:
    """The most `limit=1` requests planning `total` objects into windows of `window_size` may
    make, whatever the order of the partner's list: two per window it needs, and 16."""
    return 2 * -(-total // max(1, window_size)) + 16


def first_last_updated(page: FetchedPage, reader: PageReader) -> int | None:
    """The `last_updated` second of a probe's first object (its canonical reading), if any."""
    items = page.envelope.items
    return reader.read(items[:1]).last_updated[0] if items else None
