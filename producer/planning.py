"""Planning a pull: pin the snapshot, probe counts, and turn the planner's windows into a plan.

Also the one place that builds a window's page URL, so probes and pages ask the same question.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from yarl import URL

from producer.ocpi.client import FetchedPage
from producer.windows import TimeRange, WindowPlanner
from schemas.records import PullPlan, WindowSpec

# Sessions require date_from (OCPI 2.1.1 and 2.2.1); "everything" then starts at the epoch.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)


def format_ocpi_datetime(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: UTC, whole seconds, no `+` for a partner to mangle (P4, P12)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pin_now() -> datetime:
    """The pull's snapshot instant: now, truncated to whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


def to_epoch(value: datetime | None) -> int | None:
    """Whole epoch seconds."""
    return None if value is None else int(value.timestamp())


def from_epoch(value: int | None) -> datetime | None:
    """A UTC datetime from epoch seconds."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def page_url(
    endpoint: URL,
    *,
    module: str,
    ocpi_version: str,
    date_from: datetime | None,
    date_to: datetime | None,
    offset: int,
    limit: int,
    overlap_211: bool = True,
) -> URL:
    """A window's list URL at `offset`: the endpoint's own query, then offset/limit/filters.

    OCPI 2.1.1 does not say whether `date_from` is inclusive, so a 2.1.1 window starts one second
    early (duplicates at the boundary are harmless; a lost boundary object is not).
    """
    query: list[tuple[str, str]] = [
        (k, v)
        for k, v in endpoint.query.items()
        if k not in ("offset", "limit", "date_from", "date_to")
    ]
    query += [("offset", str(offset)), ("limit", str(limit))]
    start = date_from
    if start is not None and overlap_211 and ocpi_version.startswith("2.1"):
        start = start - ONE_SECOND
    if start is None and module == "sessions":
        start = EPOCH
    if start is not None:
        query.append(("date_from", format_ocpi_datetime(start)))
    if date_to is not None:
        query.append(("date_to", format_ocpi_datetime(date_to)))
    return endpoint.with_query(query)


Probe = Callable[[URL], Awaitable[FetchedPage]]


def _parse_last_updated(item: object) -> int | None:
    if not isinstance(item, dict):
        return None
    value = item.get("last_updated")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


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
) -> tuple[list[WindowSpec], bool]:
    """Windows for `[date_from, date_to)` from `limit=1` count probes; also whether the partner
    reported totals at all (without `X-Total-Count` there is nothing to split by)."""

    def url(window: TimeRange) -> URL:
        return page_url(
            endpoint,
            module=module,
            ocpi_version=ocpi_version,
            date_from=from_epoch(window.start),
            date_to=from_epoch(window.end) or date_to,
            offset=0,
            limit=1,
            overlap_211=False,
        )

    start, end = to_epoch(date_from), to_epoch(date_to)
    assert end is not None
    root = TimeRange(end, start)
    first = await probe(url(root))
    if first.total is None:
        return [WindowSpec(index=0, date_from=date_from, date_to=date_to, expected=0)], False
    hint = _parse_last_updated(first.envelope.items[0]) if first.envelope.items else None
    planner = WindowPlanner(start, end, window_size, start_hint=hint)
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
    return specs, True


def new_plan(
    *,
    pull_id: str,
    partner: str,
    module: str,
    ocpi_version: str,
    kind: Literal["full", "incremental"],
    date_from: datetime | None,
    date_to: datetime,
    windows: list[WindowSpec],
) -> PullPlan:
    """The plan record every shard and every resume of this pull follows."""
    return PullPlan(
        pull_id=pull_id,
        partner=partner,
        module=module,
        ocpi_version=ocpi_version,
        kind=kind,
        date_from=date_from,
        date_to=date_to,
        windows=windows,
        created_at=datetime.now(UTC),
    )
