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
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yarl import URL

from producer.errors import PartnerProtocolError
from producer.ocpi.client import LinkGoneError, OcpiHttp
from producer.ocpi.links import plain_offset_of
from producer.ocpi.pagination import PageOutcome, PageRequest, WindowWalk
from producer.ocpi.query import page_url
from producer.ocpi.responses import FetchedPage, PageContext
from producer.ocpi.versions import ModuleEndpoint


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
        """The page's objects, parsed but not validated."""
        return self.page.envelope.items


class PageDriver:
    """Drives one `WindowWalk` over HTTP: fetch what it asks, report what came back."""

    def __init__(
        self,
        http: OcpiHttp,
        query: ListQuery,
        walk: WindowWalk,
        *,
        slots: asyncio.Semaphore | None = None,
        window: int | None = None,
    ) -> None:
        self._http = http
        self._query = query
        self._walk = walk
        self._slots = slots
        self._window = window
        self._base_url = query.url(0)

    @property
    def walk(self) -> WindowWalk:
        """The walk this driver reports to (its checkpoint, totals and verdict inputs)."""
        return self._walk

    async def pages(self) -> AsyncGenerator[WindowPage, None]:
        """Every page the walk asks for, as it arrives, until the chain is complete.

        Raises what ends the window: a `PaginationLoop` from the walk, a refused next link (after
        its page was yielded: the page itself is good), or the HTTP client's errors.
        """
        walk = self._walk
        fetches: dict[asyncio.Task[FetchedPage], PageRequest] = {}
        try:
            while True:
                for request in walk.next_requests():
                    fetches[asyncio.create_task(self._fetch(request))] = request
                if walk.finished and not fetches:
                    return
                if not fetches:
                    raise PartnerProtocolError("pagination stalled: nothing left to fetch")
                done, _ = await asyncio.wait(fetches, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: fetches[t].offset):
                    request = fetches.pop(task)
                    try:
                        page = task.result()
                    except LinkGoneError:
                        walk.on_link_lost(request)
                        continue
                    walk.on_page(request, self._outcome(page))
                    yield WindowPage(request, page)
                    if page.refused_next is not None:
                        raise page.refused_next
        finally:
            await _cancel_all(fetches)

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

    def _outcome(self, page: FetchedPage) -> PageOutcome:
        next_url = page.next_url
        return PageOutcome(
            count=len(page.envelope.items),
            total=page.total,
            limit=page.limit,
            next_url=None if next_url is None else str(next_url),
            next_offset=None if next_url is None else plain_offset_of(next_url, self._base_url),
        )


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
