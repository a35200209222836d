"""The page driver: one window's pages as an async iterator. Every reader of pages uses it.

The pull's window loop, the public `PullClient` and the tombstone catch-up read all iterate
`PageDriver.pages()`. The pure `WindowWalk` decides what to fetch (next link, fan-out offsets,
step-backs) and when the chain is complete; the driver only performs the fetches, reports each
page to the walk, and hands the page to its reader. Pages come in the order they arrive, which
with fan-out is not list order.

Fetching stops while the reader is busy with a page: the next fetches are started only when the
reader asks for the next page, so a slow reader (Kafka backpressure) slows the partner requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yarl import URL

from producer.errors import PaginationLoop, PartnerProtocolError, PullError
from producer.ocpi.http.client import LinkGoneError, OcpiHttp
from producer.ocpi.paging.pagination import WindowWalk
from producer.ocpi.paging.repair import LinkRepair
from producer.ocpi.paging.walk import PageOutcome, PageRequest, WalkStart
from producer.ocpi.protocol.links import plain_offset_of
from producer.ocpi.protocol.query import page_url
from producer.ocpi.protocol.responses import FetchedPage, PageContext
from producer.ocpi.protocol.versions import ModuleEndpoint

# A whole window's walk, one page at a time, totals believed as far as they hold.
FROM_THE_START = WalkStart()

# A page at a later offset that starts with these first objects of an earlier page is that
# page again: the partner ignores `offset`.
SAME_PAGE_HEAD = 2


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What one window asks the partner's list endpoint for."""

    endpoint: ModuleEndpoint
    date_from: datetime | None
    date_to: datetime | None
    limit: int
    # OCPI 2.1.1 leaves date_from's inclusiveness open: a window then starts a second early.
    overlap_211: bool = True

    def url(self, offset: int, limit: int | None = None) -> URL:
        """The list URL at `offset` (for `limit` objects, else the window's page size)."""
        return page_url(
            self.endpoint.url,
            module=self.endpoint.module,
            ocpi_version=self.endpoint.ocpi_version,
            date_from=self.date_from,
            date_to=self.date_to,
            offset=offset,
            limit=self.limit if limit is None else limit,
            overlap_211=self.overlap_211,
        )


@dataclass(frozen=True, slots=True)
class WindowPage:
    """A fetched page and the request the walk made for it."""

    request: PageRequest
    page: FetchedPage

    @property
    def offset(self) -> int:
        """The page's position in the window's list (as requested)."""
        return self.request.offset

    @property
    def items(self) -> list[Any]:
        """The page's objects, each its JSON text as sent (the page reader reads them)."""
        return self.page.envelope.items

    @property
    def text(self) -> bytes:
        """The page's whole JSON text, which the page reader may decode in one go."""
        return self.page.envelope.text


class PageDriver:
    """Drives one `WindowWalk` over HTTP: fetch what it asks, report what came back."""

    def __init__(
        self,
        http: OcpiHttp,
        query: ListQuery,
        start: WalkStart = FROM_THE_START,
        *,
        slots: asyncio.Semaphore | None = None,
        window: int | None = None,
        repair: LinkRepair | None = None,
        stop: Sequence[asyncio.Event] = (),
    ) -> None:
        self._http = http
        # Once one is set, no more pages are fetched: the iterator ends (the window drains, or
        # its reader has seen enough).
        self._stop = tuple(stop)
        self._query = query
        # The one place a walk is made: every reader of pages gets it from its driver.
        self._walk = WindowWalk(
            start.offset,
            start.total,
            max_ahead=start.max_ahead,
            probe_past_end=start.probe_past_end,
            stop_at=start.stop_at,
            earlier_total=start.earlier_total,
        )
        self._slots = slots
        self._window = window
        self._repair = repair or LinkRepair()
        self._base_url = query.url(0)
        # The first objects of the first page fetched (and its offset): the same-page check.
        self._head: tuple[int, list[Any]] | None = None

    @property
    def walk(self) -> WindowWalk:
        """The walk this driver reports to (its checkpoint, totals and verdict inputs)."""
        return self._walk

    async def pages(self) -> AsyncGenerator[WindowPage, None]:
        """Every page the walk asks for, as it arrives, until the chain is complete.

        Raises what ends the window: a `PaginationLoop` from the walk, a refused next link (after
        its page was yielded: the page itself is good), or the HTTP client's errors. Ends early,
        the walk unfinished, when the driver's stop is set (pages in flight are abandoned).
        """
        walk = self._walk
        fetches: dict[asyncio.Task[FetchedPage], PageRequest] = {}
        stopped = asyncio.ensure_future(_any_set(self._stop)) if self._stop else None
        try:
            while True:
                if stopped is not None and stopped.done():
                    return
                for request in walk.next_requests():
                    fetches[asyncio.create_task(self._fetch(request))] = request
                if walk.finished and not fetches:
                    return
                if not fetches:
                    raise PartnerProtocolError("pagination stalled: nothing left to fetch")
                waiting: set[asyncio.Future[Any]] = set(fetches)
                if stopped is not None:
                    waiting.add(stopped)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if stopped is not None and stopped in done:
                    return
                arrived = [task for task in fetches if task in done]
                for task in sorted(arrived, key=lambda t: fetches[t].offset):
                    request = fetches.pop(task)
                    try:
                        page = task.result()
                    except LinkGoneError as gone:
                        self._link_failed(gone)
                        walk.on_link_lost(request)
                        continue
                    self._check_offset_honoured(request, page)
                    outcome, refused = self._outcome(request, page)
                    walk.on_page(request, outcome)
                    yield WindowPage(request, page)
                    if refused is not None:
                        raise refused
        finally:
            await _cancel_all([*fetches, *([stopped] if stopped is not None else [])])

    async def _fetch(self, request: PageRequest) -> FetchedPage:
        follow = request.url is not None
        url = (
            URL(request.url, encoded=True)
            if request.url is not None
            else self._query.url(request.offset, request.limit)
        )
        context = PageContext(self._window, request.offset, request.limit or self._query.limit)
        async with self._slots if self._slots is not None else contextlib.nullcontext():
            return await self._http.fetch_page(
                url, endpoint=self._query.endpoint.url, context=context, follow=follow
            )

    def _link_failed(self, gone: LinkGoneError) -> None:
        """A followed next link answered 400/404/422: read by offset from where the chain is.

        Without repair only a 404 is ridden out (a hub's one-shot link already used, as
        before); anything else ends the window."""
        if self._repair.enabled:
            self._repair.links_unusable = True
            self._repair.repaired(None)
        elif gone.status != 404:
            raise gone

    def _shown(self, page: FetchedPage) -> str:
        """The link being repaired, as it may appear in a summary (redacted, bounded)."""
        if page.next_url is not None:
            return self._http.redact(page.next_url)
        written = (page.refused_link or "")[:300]
        try:
            return self._http.redact(written)
        except ValueError:  # it does not even parse: show no more than that
            return "(an unparseable link)"

    def _check_offset_honoured(self, request: PageRequest, page: FetchedPage) -> None:
        """A page at a later offset that is the first page again: the partner ignores `offset`
        (every further request would loop), so the window ends with a defined error."""
        items = page.envelope.items
        if self._head is None:
            if len(items) >= SAME_PAGE_HEAD:
                self._head = (request.offset, items[:SAME_PAGE_HEAD])
            return
        first_offset, head = self._head
        built_by_us = request.url is None  # a followed link's loops are the walk's to catch
        if built_by_us and request.offset > first_offset and items[:SAME_PAGE_HEAD] == head:
            raise PaginationLoop(
                "offset_ignored",
                f"the partner answered offset {request.offset} with the page of offset "
                f"{first_offset}: it ignores offset, so its pages cannot be read by position",
            )

    def _outcome(
        self, request: PageRequest, page: FetchedPage
    ) -> tuple[PageOutcome, PullError | None]:
        """What the page says about pagination, with its next link repaired when it must be;
        and the refusal to raise once the page is handed over (the page itself is good)."""
        count = len(page.envelope.items)
        if page.link_without_rel:
            self._repair.links_without_rel += 1
        link_present = page.next_url is not None or page.refused_next is not None
        must_repair = page.refused_next is not None or self._repair.links_unusable
        asked = self._asked(request)
        if link_present and must_repair and self._repair.enabled:
            self._repair.repaired(self._shown(page))
            end = request.offset + count
            repaired = self._query.url(end)
            return PageOutcome(count, page.total, page.limit, str(repaired), end, asked), None
        next_url = page.next_url
        outcome = PageOutcome(
            count=count,
            total=page.total,
            limit=page.limit,
            next_url=None if next_url is None else str(next_url),
            next_offset=None if next_url is None else plain_offset_of(next_url, self._base_url),
            asked=asked,
        )
        return outcome, page.refused_next

    def _asked(self, request: PageRequest) -> int | None:
        """The `limit` a request asked for: ours, or a followed link's own (when it has one)."""
        if request.url is None:
            return request.limit or self._query.limit
        written = URL(request.url, encoded=True).query.get("limit", "")
        return int(written) if written.isdigit() and len(written) < 10 else None


async def _any_set(events: Sequence[asyncio.Event]) -> None:
    """Returns once one of `events` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel what is still running and retrieve every outcome (the first failure already
    propagated; the rest must not be logged as never retrieved)."""
    tasks = list(tasks)
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()
