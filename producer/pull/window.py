"""The window loop: one date window's pages → records → delivery → checkpoint.

The loop drives the walk: per page (from the page driver) it builds the page's records and hands
them to the pull's delivery (`ctx.delivery`: at-least-once or exactly-once), which sends them and,
once they are durable, lets the walk's checkpoint pass the page and records it. A window whose
distinct objects fall short of its first `X-Total-Count` is read again (bounded) before it is
judged; one whose list comes back in another order at every request is read in date pieces.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime

from producer.errors import PaginationLoop
from producer.ocpi.paging.pages import ListQuery, PageDriver, WindowPage
from producer.ocpi.paging.pagination import WindowWalk
from producer.ocpi.paging.walk import WalkStart
from producer.ocpi.planning.verdict import WindowVerdict, judge_walk, read_again
from producer.ocpi.protocol.query import asked_date_from
from producer.ocpi.protocol.responses import PageContext
from producer.pull.context import PullContext
from producer.pull.plan import plan_pieces
from producer.pull.records import PageMessages
from producer.pull.selection import WindowSelection
from producer.pull.verdict import WindowResult
from producer.pull.window_state import CheckpointOwner, WindowState
from schemas.records import WindowCheckpoint, WindowSpec

log = logging.getLogger("ocpi_puller")

# The first pages of each window whose order is looked at (by last_updated, or not).
ORDER_PAGES_CHECKED = 3
# The first pages of each reading whose objects' positions are remembered: one of them met
# again elsewhere, the total unchanged, shows a list in another order at every request.
ORDER_PAGES_WATCHED = 8


@dataclass(frozen=True, slots=True)
class FirstPage:
    """The keys and total of the first page of a window's first reading (to ask for it again)."""

    keys: list[str]
    total: int | None


class WindowPull:
    """One window's pull, possibly resumed from a checkpoint, or a re-read stretch of it."""

    def __init__(
        self,
        ctx: PullContext,
        spec: WindowSpec,
        resume: WindowCheckpoint | None,
        *,
        stop_at: int | None = None,
    ) -> None:
        self._ctx = ctx
        self._spec = spec
        self._resume = resume
        self._query = ListQuery(ctx.endpoint, spec.date_from, spec.date_to, ctx.limit)
        self._selection = WindowSelection(
            spec.date_from,
            spec.date_to,
            asked_from=asked_date_from(spec.date_from, ctx.endpoint.ocpi_version),
            keystate=ctx.keystate,
            skip_unchanged=ctx.options.skip_unchanged,
            written_before=ctx.written_before,
        )
        owner = CheckpointOwner(ctx.pull_id, ctx.partner, ctx.endpoint.module, ctx.pinned_date_to)
        # What the window's checkpoints carry: its figures and position.
        self._state = WindowState(
            owner,
            spec,
            resume,
            self._selection,
            ctx.counters,
            written_before=ctx.written_before,
            stop_at=stop_at,
            losses_seen=lambda: ctx.kafka.has_lost((ctx.topics.objects, ctx.topics.deadletter)),
        )
        self._page_size: int | None = None  # what the partner serves at once
        self._first_page: FirstPage | None = None
        self._pages_ordered_checked = 0
        # Set when a page shows the order changing under us: the reading stops there.
        self._seen_unstable = asyncio.Event()
        # Where the objects of a reading's first pages were, by key hash: one int each, its
        # position times ORDER_PAGES_WATCHED plus the index of its page in `_watched_pages`
        # (the page's offset and the total then): tens of thousands per window at once.
        self._positions: dict[int, int] = {}
        self._watched_pages: list[tuple[int, int]] = []
        self._pages_watched = 0

    async def run(self) -> WindowResult:
        """Pull the window to the end (re-reading it when it comes up short; read in date
        pieces of a page each when the partner's order is shown to be unstable)."""
        ctx, resume = self._ctx, self._resume
        start_offset, start_total = (
            (0, None) if resume is None else (resume.next_offset, resume.total_at_offset)
        )
        if resume is not None and resume.narrowed and not self._state.rereading:
            return await self._narrow(first_total=None, passes=0)
        passes = 0
        while True:
            passes += 1
            start = self._walk_start(
                start_offset, start_total, self._spec, stop_at=self._state.stop_at
            )
            driver = self._driver(start)
            walk = driver.walk
            problem = None
            try:
                await self._read(driver)
            except PaginationLoop as loop:
                problem = f"{loop.reason}: {loop}"
            if ctx.stop.stopping.is_set():
                # Drained: what was sent is acknowledged and checkpointed; a resume goes on.
                raise ctx.stop.error()
            self._page_size = walk.page_size or self._page_size
            verdict = judge_walk(
                walk,
                received=self._selection.received,
                start_offset=start_offset,
                problem=problem,
                rereading_part=self._state.rereading,
            )
            ctx.counters.skipped_unchanged += self._selection.take_skipped_unchanged()
            if problem is None:
                self._count(walk)
            if self._seen_unstable.is_set() and not self._state.rereading:
                self._ctx.counters.unstable_windows += 1
                return await self._narrow(first_total=walk.first_total, passes=passes)
            if self._state.rereading or not read_again(verdict, walk.first_total, passes):
                return await self._finish(walk.first_total, verdict, passes, walk.patches)
            if await self._unstable():
                return await self._narrow(first_total=walk.first_total, passes=passes)
            ctx.progress.warning(
                "window_short",
                f"window {self._spec.index}: {self._selection.received} distinct objects for a "
                f"reported total of {verdict.expected}; reading the window again",
                window=self._spec.index,
            )
            start_offset, start_total = 0, None

    async def _unstable(self) -> bool:
        """Whether the partner lists this window in another order at every request: once any
        window showed it, yes; else its first page, asked again, must come back as it came."""
        ctx = self._ctx
        if ctx.counters.unstable_windows:
            ctx.counters.unstable_windows += 1
            return True
        if self._first_page is None:
            return False
        again = await ctx.http.fetch_page(
            self._query.url(0),
            endpoint=ctx.endpoint.url,
            context=PageContext(self._spec.index, 0, self._query.limit),
            follow=False,
        )
        first = self._first_page
        keys = ctx.builder.build(ctx.reader.read(again.envelope.items), 0, "", None).keys
        if again.total == first.total and keys != first.keys:
            ctx.counters.unstable_windows += 1
            return True
        return False

    async def _narrow(self, *, first_total: int | None, passes: int) -> WindowResult:
        """Read the window in date pieces of at most a page each (counted by `limit=1`
        requests, split as planning splits), one request per piece: an order that changes
        from request to request cannot skip or repeat objects within one page. A piece that
        cannot be split (one second holds more than a page) is read again, its keys unioned,
        up to `--max-rereads` times."""
        ctx, spec = self._ctx, self._spec
        self._state.narrowed = True
        ctx.counters.narrowed_windows += 1
        await ctx.store.save_window(self._state.checkpoint(None, done=False))
        page = self._page_size or ctx.limit
        planned = await plan_pieces(ctx, spec, min(page, ctx.limit), self._selection.seen_span())
        ctx.progress.warning(
            "window_narrowed",
            f"window {spec.index}: the partner lists it in another order at every request; "
            f"reading it in {len(planned.windows)} date pieces of at most a page each "
            f"({planned.requests} count requests)",
            window=spec.index,
        )
        slots = asyncio.Semaphore(max(1, ctx.options.fanout))

        async def one(piece: WindowSpec) -> tuple[int, str | None]:
            async with slots:
                return await self._read_piece(piece, page)

        outcomes = await asyncio.gather(*(one(piece) for piece in planned.windows))
        if ctx.stop.stopping.is_set():
            raise ctx.stop.error()
        expected = sum(piece.expected for piece in planned.windows)
        shortfall = sum(short for short, _ in outcomes)
        problems = [problem for _, problem in outcomes if problem]
        verdict = WindowVerdict(
            complete=not shortfall and not problems,
            expected=expected,
            shortfall=shortfall,
            problem=problems[0] if problems else None,
        )
        total = first_total if first_total is not None else expected
        return await self._finish(total, verdict, passes + 1, 0)

    async def _read_piece(self, piece: WindowSpec, page: int) -> tuple[int, str | None]:
        """One date piece of the window, read whole (again and again if it holds more than a
        page): what it fell short by, and why."""
        ctx = self._ctx
        keys: set[int] = set()
        query = ListQuery(ctx.endpoint, piece.date_from, piece.date_to, ctx.limit)
        reads = 0
        while True:
            reads += 1
            driver = self._driver(self._walk_start(0, None, piece), query)
            walk = driver.walk
            problem = None
            try:
                await self._read(driver, keys)
            except PaginationLoop as loop:
                problem = f"{loop.reason}: {loop}"
            if ctx.stop.stopping.is_set():
                return 0, None
            verdict = judge_walk(walk, received=len(keys), problem=problem)
            if verdict.complete or problem is not None:
                return verdict.unexplained_shortfall, verdict.problem
            if reads >= ctx.options.max_rereads:
                one_second = (
                    piece.date_from is not None
                    and (piece.date_to - piece.date_from).total_seconds() <= 1
                )
                why = (
                    f"more than a page of {page} share one second"
                    if one_second
                    else "planning's budget could not split it further"
                )
                return verdict.unexplained_shortfall, (
                    f"unsplittable: {len(keys)} distinct objects of {verdict.expected} in "
                    f"[{_iso(piece.date_from)}, {_iso(piece.date_to)}) after {reads} reads "
                    f"({why}, listed in another order at every request)"
                )

    def _walk_start(
        self,
        start_offset: int,
        start_total: int | None,
        window: WindowSpec,
        *,
        stop_at: int | None = None,
    ) -> WalkStart:
        """A walk over `window` (this window, or a date piece of it) from a position, fanning out
        and probing past the end as the options say."""
        options = self._ctx.options
        return WalkStart(
            start_offset,
            start_total,
            max_ahead=options.fanout,
            probe_past_end=options.probe_past_end,
            stop_at=stop_at,
            earlier_total=self._planned_total(window),
        )

    def _planned_total(self, window: WindowSpec) -> int | None:
        """The window's count when the pull was planned: no page may end beyond it. (A 2.1.1
        window asks from a second before its start, which the count did not.)"""
        ctx = self._ctx
        if not ctx.totals_reported or ctx.endpoint.ocpi_version.startswith("2.1"):
            return None
        return window.expected

    def _watch_order(self, offset: int, total: int | None, messages: PageMessages) -> None:
        """An object at another position than before while the total stayed the same: the
        window's list only shrinks under us (date_to is pinned), so positions move only when
        the total does; this list is in another order at every request."""
        if total is None or self._seen_unstable.is_set():
            return
        positions, pages = self._positions, self._watched_pages
        keep = self._pages_watched < ORDER_PAGES_WATCHED
        self._pages_watched += 1
        slot = len(pages)
        if keep:
            pages.append((offset, total))
        for hashed, place in zip(messages.hashes, messages.positions, strict=True):
            seen = positions.get(hashed)
            if seen is None:
                if keep:
                    positions[hashed] = (offset + place) * ORDER_PAGES_WATCHED + slot
                continue
            seen_position, seen_slot = divmod(seen, ORDER_PAGES_WATCHED)
            seen_offset, seen_total = pages[seen_slot]
            # (A key a page lists twice is the partner's duplicate, not a change of order.)
            moved = seen_offset != offset and seen_position != offset + place
            if moved and seen_total == total:
                self._seen_unstable.set()
                return

    def _count_listing(self) -> None:
        """What the window's listing showed, counted once per window however often it was
        read: keys listed twice, and objects listed outside the window's range."""
        ctx, selection = self._ctx, self._selection
        ctx.counters.duplicate_keys += selection.duplicate_keys
        if selection.out_of_window:
            ctx.counters.out_of_window += selection.out_of_window
            ctx.counters.filter_contradicted += selection.filter_contradicted
            spec = self._spec
            early = selection.early_by_s
            # A filter that runs early lists every window's objects from before its start, and
            # so the last window misses those of its last seconds: no window lists them.
            consequence = (
                f"; some lie up to {early} s before its start: the partner's date filter runs "
                f"early, and objects updated in the last {early} s before date_to may be listed "
                "by no window"
                if early > 1
                else ""
            )
            ctx.progress.warning(
                "out_of_window",
                f"window {spec.index}: {selection.out_of_window} objects listed for "
                f"[{_iso(spec.date_from)}, {_iso(spec.date_to)}) have a last_updated outside "
                f"it (produced all the same; is the partner's date filter shifted?){consequence}",
                window=spec.index,
            )

    def _count(self, walk: WindowWalk) -> None:
        counters = self._ctx.counters
        if walk.total_unreliable is not None:
            counters.totals_unreliable += 1
            self._ctx.progress.warning(
                "total_unreliable",
                f"window {self._spec.index}: {walk.total_unreliable}; the partner's totals are "
                "ignored and the window was read to an empty page",
                window=self._spec.index,
            )
        counters.step_backs += walk.patches
        counters.found_by_probing += walk.found_by_probing
        if not self._state.rereading and walk.ended_full_without_link:
            counters.full_page_without_link += 1

    def _driver(self, start: WalkStart, query: ListQuery | None = None) -> PageDriver:
        """The pages of this window (or of `query`, a date piece of it), walked from `start`."""
        ctx = self._ctx
        return PageDriver(
            ctx.http,
            query or self._query,
            start,
            window=self._spec.index,
            repair=ctx.repair,
            # A reading stops once the order is seen changing (then the window is narrowed).
            stop=(ctx.stop.stopping,)
            if self._state.narrowed
            else (ctx.stop.stopping, self._seen_unstable),
        )

    async def _read(self, driver: PageDriver, tally: set[int] | None = None) -> None:
        """One pass: every page the walk asks for, produced; returns when all are acknowledged.
        (`tally`: what a date piece's pages list, counted apart.)"""
        ctx = self._ctx
        await ctx.delivery.read_pass(ctx, self._state, driver, self._messages, tally)

    def _messages(self, fetched: WindowPage) -> PageMessages:
        """The records a page makes (before the ledger chooses which of them to send)."""
        ctx = self._ctx
        page = fetched.page
        read = ctx.reader.read(fetched.items, fetched.text)
        messages = ctx.builder.build(
            read,
            fetched.offset,
            ctx.http.redact(page.url),
            page.traceparent,
            self._spec.index,
        )
        request = fetched.request
        first = request.offset == 0 and request.url is None and request.limit is None
        if first and self._first_page is None and not self._state.narrowed:
            self._first_page = FirstPage(messages.keys, page.total)
        if not self._state.narrowed:
            self._watch_order(fetched.offset, page.total, messages)
        if self._pages_ordered_checked < ORDER_PAGES_CHECKED and len(fetched.items) > 1:
            self._pages_ordered_checked += 1
            known = [s for s in read.last_updated if s is not None]
            ordered = all(a <= b for a, b in itertools.pairwise(known))
            ctx.counters.pages_by_last_updated[ordered] += 1
        return messages

    async def _finish(
        self, first_total: int | None, verdict: WindowVerdict, passes: int, step_backs: int
    ) -> WindowResult:
        ctx, spec, state = self._ctx, self._spec, self._state
        if not state.rereading:
            self._count_listing()
        result = WindowResult(
            spec.index,
            verdict.complete,
            state.emitted,
            self._selection.distinct,
            first_total,
            verdict.unexplained_shortfall,
            passes,
            verdict.problem,
            tuple(state.ack_history),
        )
        if state.rereading:
            return result  # a re-read stretch: the window's own reading reported and recorded it
        await ctx.store.save_window(
            state.checkpoint(None, done=True, verdict=verdict, passes=passes)
        )
        ctx.progress.window_done(
            window=spec.index,
            date_from=spec.date_from,
            date_to=spec.date_to,
            complete=verdict.complete,
            objects_emitted=state.emitted,
            distinct_objects=self._selection.distinct,
            first_total=first_total,
            shortfall=verdict.shortfall,
            passes=passes,
            step_backs=step_backs,
        )
        if verdict.problem is not None:
            ctx.progress.warning(
                "pagination_loop", f"window {spec.index}: {verdict.problem}", spec.index
            )
        return result


def _iso(moment: datetime | None) -> str:
    return "…" if moment is None else moment.isoformat().replace("+00:00", "Z")
