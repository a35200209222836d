"""Planning a pull's windows: `limit=1` count probes driven by the pure `WindowPlanner`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from yarl import URL

from producer.errors import PartnerAuthError, PartnerProtocolError, PartnerUnavailableError
from producer.ocpi.query import from_epoch, page_url, to_epoch
from producer.ocpi.reader import PageReader
from producer.ocpi.responses import FetchedPage
from producer.ocpi.windows import TimeRange, WindowPlanner
from schemas.records import WindowSpec


@dataclass(frozen=True, slots=True)
class PlannedWindows:
    """The windows, and what planning learnt about the partner."""

    windows: list[WindowSpec]
    # Without `X-Total-Count` there is nothing to split by: one window, no count checks.
    totals_reported: bool
    # Date-filtered counts came back as the unfiltered total: the partner ignores the filters.
    filters_ignored: bool


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
) -> PlannedWindows:
    """Windows for `[date_from, date_to)` from `limit=1` count probes."""

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
    if first.total is None:
        only = WindowSpec(index=0, date_from=date_from, date_to=date_to, expected=0)
        return PlannedWindows([only], totals_reported=False, filters_ignored=False)
    reader = PageReader(ocpi_version, module, None)  # only last_updated is read: no keys needed
    hints = [first_last_updated(first, reader)]
    if first.total > window_size:
        # The list's other end too: most partners list by last_updated (or its reverse), so the
        # two bound where the objects are; if not, they only cost a few more probes. A partner
        # that refuses this one request is planned without it.
        # (Deep offsets are what windows avoid: a partner slow or failing there costs at most
        # HINT_PROBE_TIMEOUT_S.)
        with contextlib.suppress(*HINT_PROBE_FAILURES):
            async with asyncio.timeout(HINT_PROBE_TIMEOUT_S):
                last = await probe(url(root, first.total - 1))
                hints.append(first_last_updated(last, reader))
    seen = [hint for hint in hints if hint is not None]
    planner = WindowPlanner(
        start,
        end,
        window_size,
        start_hint=min(seen, default=None),
        end_hint=max(seen) if len(seen) == 2 else None,
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
    specs = [
        WindowSpec(
            index=w.index,
            date_from=from_epoch(w.start),
            date_to=from_epoch(w.end) or date_to,
            expected=w.expected,
        )
        for w in planner.windows()
    ]
    return PlannedWindows(specs, totals_reported=True, filters_ignored=planner.filters_ignored)


def first_last_updated(page: FetchedPage, reader: PageReader) -> int | None:
    """The `last_updated` second of a probe's first object (its canonical reading), if any."""
    items = page.envelope.items
    return reader.read(items[:1]).last_updated[0] if items else None
