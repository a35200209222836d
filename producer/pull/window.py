"""The window loop: one date window's pages → records → send → ack → checkpoint.

Per page (from the page driver): build and select its records → produce them (bounded by the
pull's unacknowledged-page slots) → on Kafka's acknowledgement the walk's checkpoint advances and is
recorded, and progress is reported. A window whose distinct objects fall short of its first
`X-Total-Count` is read again (bounded) before it is judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError

from producer.errors import PaginationLoop, PullError
from producer.kafka.output import Marks
from producer.ocpi.paging.pages import ListQuery, PageDriver, WindowPage
from producer.ocpi.paging.pagination import WindowWalk
from producer.ocpi.paging.walk import ChainLink
from producer.ocpi.planning.verdict import WindowVerdict, judge_window, read_again
from producer.ocpi.protocol.query import asked_date_from
from producer.ocpi.protocol.responses import PageContext
from producer.pull.context import PullContext
from producer.pull.ledger import AckedPages
from producer.pull.plan import plan_pieces
from producer.pull.records import PageMessages
from producer.pull.selection import WindowSelection
from producer.pull.transacted import TransactedPass
from producer.pull.verdict import AckMark, WindowResult
from schemas.records import WindowCheckpoint, WindowSpec

log = logging.getLogger("ocpi_puller")

# The first pages of each window whose order is looked at (by last_updated, or not).
ORDER_PAGES_CHECKED = 3
# The first pages of each reading whose objects' positions are remembered: one of them met
# again elsewhere, the total unchanged, shows a list in another order at every request.
ORDER_PAGES_WATCHED = 8


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a page sat: the walk's request, and its start and end offsets."""

    request_id: int
    offset: int
    end: int


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
        self._stop_at = stop_at
        self._query = ListQuery(ctx.endpoint, spec.date_from, spec.date_to, ctx.limit)
        self._selection = WindowSelection(
            spec.date_from,
            spec.date_to,
            asked_from=asked_date_from(spec.date_from, ctx.endpoint.ocpi_version),
            keystate=ctx.keystate,
            skip_unchanged=ctx.options.skip_unchanged,
            written_before=ctx.written_before,
        )
        self._emitted = 0 if resume is None else resume.objects_emitted
        if resume is not None and ctx.written_before is not None:
            # What Kafka holds of this window (read back): exact, where the checkpoint may lag
            # behind acknowledgements a killed run never recorded.
            self._emitted = len(ctx.written_before.window_keys.get(spec.index, ()))
        # This window's own figures, carried by its checkpoints (a resume goes on from them).
        self._dialects: Counter[str] = Counter({} if resume is None else resume.dialects)
        self._duplicates_before = 0 if resume is None else resume.duplicate_keys
        self._resent = 0 if resume is None else resume.resent_objects
        start = (0, None) if resume is None else (resume.next_offset, resume.total_at_offset)
        self._ack_history: list[AckMark] = [AckMark(time.monotonic(), start[0], start[1], start[0])]
        self._furthest_acked = start[0]
        self._position = ChainLink(-1, start[0], start[1])  # the last checkpoint's position
        self._page_size: int | None = None  # what the partner serves at once
        self._narrowing = False  # read in date pieces (an unstable order)
        # The keys and total of the first page of the first reading, to ask for it again.
        self._first_page: tuple[list[str], int | None] | None = None
        self._pages_ordered_checked = 0
        # Set when a page shows the order changing under us: the reading stops there.
        self._seen_unstable = asyncio.Event()
        # Where the objects of a reading's first pages were: (page offset, position, total).
        self._positions: dict[int, tuple[int, int, int | None]] = {}
        self._pages_placed = 0

    async def run(self) -> WindowResult:
        """Pull the window to the end (re-reading it when it comes up short; read in date
        pieces of a page each when the partner's order is shown to be unstable)."""
        ctx, resume = self._ctx, self._resume
        start_offset, start_total = (
            (0, None) if resume is None else (resume.next_offset, resume.total_at_offset)
        )
        if resume is not None and resume.narrowed and self._stop_at is None:
            return await self._narrow(first_total=None, passes=0)
        passes = 0
        while True:
            passes += 1
            walk = WindowWalk(
                start_offset,
                start_total,
                max_ahead=ctx.options.fanout,
                probe_past_end=ctx.options.probe_past_end,
                stop_at=self._stop_at,
                earlier_total=self._planned_total(),
            )
            problem = None
            try:
                await self._read(walk)
            except PaginationLoop as loop:
                problem = f"{loop.reason}: {loop}"
            if ctx.stop.stopping.is_set():
                # Drained: what was sent is acknowledged and checkpointed; a resume goes on.
                raise ctx.stop.error()
            self._page_size = walk.page_size or self._page_size
            verdict = judge_window(
                walk_complete=walk.complete,
                first_total=walk.first_total,
                latest_total=walk.latest_total,
                start_offset=start_offset,
                received=self._selection.received,
                problem=problem,
                rereading_part=self._stop_at is not None,
            )
            ctx.counters.skipped_unchanged += self._selection.take_skipped_unchanged()
            if problem is None:
                self._count(walk)
            if self._seen_unstable.is_set() and self._stop_at is None:
                self._ctx.counters.unstable_windows += 1
                return await self._narrow(first_total=walk.first_total, passes=passes)
            if self._stop_at is not None or not read_again(verdict, walk.first_total, passes):
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
        first_keys, first_total = self._first_page
        keys = ctx.builder.build(ctx.reader.read(again.envelope.items), 0, "", None).keys
        if again.total == first_total and keys != first_keys:
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
        self._narrowing = True
        ctx.counters.narrowed_windows += 1
        await ctx.store.save_window(self._checkpoint(None, done=False))
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
            walk = WindowWalk(
                max_ahead=ctx.options.fanout,
                probe_past_end=ctx.options.probe_past_end,
                earlier_total=self._planned_total_of(piece),
            )
            problem = None
            try:
                await self._read(walk, query, keys)
            except PaginationLoop as loop:
                problem = f"{loop.reason}: {loop}"
            if ctx.stop.stopping.is_set():
                return 0, None
            verdict = judge_window(
                walk_complete=walk.complete,
                first_total=walk.first_total,
                latest_total=walk.latest_total,
                start_offset=0,
                received=len(keys),
                problem=problem,
            )
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

    def _planned_total(self) -> int | None:
        """The window's count when the pull was planned: no page may end beyond it."""
        return self._planned_total_of(self._spec)

    def _planned_total_of(self, window: WindowSpec) -> int | None:
        # (A 2.1.1 window asks from a second before its start, which the count did not.)
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
        positions = self._positions
        keep = self._pages_placed < ORDER_PAGES_WATCHED
        self._pages_placed += 1
        for key, place in zip(messages.keys, messages.positions, strict=True):
            hashed = hash(key)
            seen = positions.get(hashed)
            # (A key a page lists twice is the partner's duplicate, not a change of order.)
            moved = seen is not None and seen[0] != offset and seen[1] != offset + place
            if moved and seen is not None and seen[2] == total:
                self._seen_unstable.set()
                return
            if keep and seen is None:
                positions[hashed] = (offset, offset + place, total)

    def _count_dialects(self, messages: PageMessages) -> None:
        counters = self._ctx.counters
        for dialect, count in messages.dialect_counts().items():
            counters.dialects[dialect.value] += count
            self._dialects[dialect.value] += count
            example = messages.examples.get(dialect)
            if example is not None:
                counters.dialect_examples.setdefault(dialect.value, example)

    def _count_listing(self) -> None:
        """What the window's listing showed, counted once per window however often it was
        read: keys listed twice, and objects listed outside the window's range."""
        ctx, selection = self._ctx, self._selection
        ctx.counters.duplicate_keys += selection.duplicate_keys
        if selection.out_of_window:
            ctx.counters.out_of_window += selection.out_of_window
            spec = self._spec
            ctx.progress.warning(
                "out_of_window",
                f"window {spec.index}: {selection.out_of_window} objects listed for "
                f"[{_iso(spec.date_from)}, {_iso(spec.date_to)}) have a last_updated outside "
                "it (produced all the same; is the partner's date filter shifted?)",
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
        if self._stop_at is None and walk.ended_full_without_link:
            counters.full_page_without_link += 1

    async def _read(
        self, walk: WindowWalk, query: ListQuery | None = None, tally: set[int] | None = None
    ) -> None:
        """One pass: every page the walk asks for, produced; returns when all are acknowledged.
        (`query`: a date piece of the window; `tally`: what its pages list, counted apart.)"""
        ctx = self._ctx
        driver = PageDriver(
            ctx.http,
            query or self._query,
            walk,
            window=self._spec.index,
            repair=ctx.repair,
            # A reading stops once the order is seen changing (then the window is narrowed).
            stop=(ctx.stop.stopping,)
            if self._narrowing
            else (ctx.stop.stopping, self._seen_unstable),
        )
        if ctx.units is not None:  # exactly-once: pages go into commit units
            transacted = TransactedPass(
                ctx,
                self._spec.index,
                walk,
                self._selection,
                self._covered,
                self._count_dialects,
                tally,
            )
            await transacted.read(driver, self._messages)
            return
        ledger = AckedPages(walk, self._selection, tally)
        acks: set[asyncio.Task[None]] = set()
        try:
            async with contextlib.aclosing(driver.pages()) as pages:
                async for fetched in pages:
                    _raise_first_failure(acks)
                    acks.add(asyncio.create_task(await self._produce(walk, ledger, fetched)))
        except PullError:
            # Whatever was produced still gets acknowledged and checkpointed before failing.
            await asyncio.gather(*acks, return_exceptions=True)
            raise
        except BaseException:
            for task in acks:
                task.cancel()
            await asyncio.gather(*acks, return_exceptions=True)
            raise
        results = await asyncio.gather(*acks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

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
        if first and self._first_page is None and not self._narrowing:
            self._first_page = (messages.keys, page.total)
        if not self._narrowing:
            self._watch_order(fetched.offset, page.total, messages)
        if self._pages_ordered_checked < ORDER_PAGES_CHECKED and len(fetched.items) > 1:
            self._pages_ordered_checked += 1
            known = [s for s in read.last_updated if s is not None]
            ordered = all(a <= b for a, b in itertools.pairwise(known))
            ctx.counters.pages_by_last_updated[ordered] += 1
        return messages

    def _covered(self, walk: WindowWalk, objects: int) -> WindowCheckpoint:
        """Exactly-once: pages holding `objects` are settled; the checkpoint that covers them."""
        self._emitted += objects
        return self._checkpoint(walk, done=False)

    async def _produce(
        self, walk: WindowWalk, ledger: AckedPages, fetched: WindowPage
    ) -> Coroutine[Any, Any, None]:
        """Queue a page's records; returns the wait for their acknowledgement."""
        ctx = self._ctx
        messages = ledger.fetched(self._messages(fetched))
        await ctx.unacked_pages.acquire()
        try:
            objects_ack = await ctx.kafka.send(ctx.topics.objects, messages.objects)
            dead_ack = await ctx.kafka.send(ctx.topics.deadletter, messages.dead_letters)
        except BaseException:
            ctx.unacked_pages.release()
            raise
        page_end = fetched.offset + len(fetched.items)
        # The wait holds the page's records (bytes), never the parsed page: unacknowledged pages
        # are what a pull keeps in memory.
        placed = Placed(fetched.request.request_id, fetched.offset, page_end)
        return self._await_acks(walk, ledger, placed, messages, [objects_ack, dead_ack])

    async def _await_acks(
        self,
        walk: WindowWalk,
        ledger: AckedPages,
        placed: Placed,
        messages: PageMessages,
        acks: list[asyncio.Future[Marks]],
    ) -> None:
        ctx = self._ctx
        try:
            try:
                marks = await ctx.kafka.wait_acked(acks)
            except KafkaError as error:
                # Never count a page as done that Kafka did not acknowledge: produce it again
                # (duplicates are harmless) until the broker is back or the deadline passes.
                log.warning("Kafka did not acknowledge a page (%s); producing it again", error)
                ctx.counters.resent_objects += len(messages.objects)
                self._resent += len(messages.objects)
                marks = await ctx.kafka.send_and_wait(ctx.topics.objects, messages.objects)
                marks.update(
                    await ctx.kafka.send_and_wait(ctx.topics.deadletter, messages.dead_letters)
                )
        finally:
            ctx.unacked_pages.release()
        if ctx.keystate is not None and messages.objects:
            # Only now that Kafka has the objects may their digests say they were produced.
            records = [
                ctx.keystate.digest_record(key, digest)
                for key, digest in zip(messages.keys, messages.digests, strict=True)
            ]
            await ctx.kafka.send_and_wait(ctx.keystate.topic, records)
        new = ledger.acknowledged(placed.request_id, messages)
        self._emitted += new
        self._furthest_acked = max(self._furthest_acked, placed.end)
        position = walk.checkpoint
        self._ack_history.append(
            AckMark(time.monotonic(), position.end, position.total, self._furthest_acked, marks)
        )
        if self._stop_at is not None:
            # Re-reading a stretch after an outage: what it sends was sent before. It leaves
            # the window's checkpoint, which its first reading finished, as it is.
            ctx.counters.resent_objects += len(messages.objects)
            return
        if messages.dialects:
            self._count_dialects(messages)  # counted once in Kafka, as the checkpoint says
        # Saved at every acknowledgement, moved or not: its figures count what Kafka has.
        await ctx.store.save_window(self._checkpoint(walk, done=False))
        ctx.progress.page(
            window=self._spec.index,
            offset=placed.offset,
            count=len(messages.objects),
            dead=len(messages.dead_letters),
            total=walk.latest_total,
            new=new,
        )

    async def _finish(
        self, first_total: int | None, verdict: WindowVerdict, passes: int, step_backs: int
    ) -> WindowResult:
        ctx, spec = self._ctx, self._spec
        if self._stop_at is None:
            self._count_listing()
        result = WindowResult(
            spec.index,
            verdict.complete,
            self._emitted,
            self._selection.distinct,
            first_total,
            verdict.unexplained_shortfall,
            passes,
            verdict.problem,
            tuple(self._ack_history),
        )
        if self._stop_at is not None:
            return result  # a re-read stretch: the window's own reading reported and recorded it
        await ctx.store.save_window(
            self._checkpoint(None, done=True, verdict=verdict, passes=passes)
        )
        ctx.progress.window_done(
            window=spec.index,
            date_from=spec.date_from,
            date_to=spec.date_to,
            complete=verdict.complete,
            objects_emitted=self._emitted,
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

    def _checkpoint(
        self,
        walk: WindowWalk | None,
        *,
        done: bool,
        verdict: WindowVerdict | None = None,
        passes: int = 1,
    ) -> WindowCheckpoint:
        """Where the window is. A window read in date pieces has no position in one list: it
        goes on from its start (the objects Kafka has are not produced again)."""
        if walk is not None and not self._narrowing:
            self._position = walk.checkpoint
        position = ChainLink(-1, 0, None) if self._narrowing else self._position
        return WindowCheckpoint(
            pull_id=self._ctx.pull_id,
            partner=self._ctx.partner,
            module=self._ctx.endpoint.module,
            window=self._spec.index,
            date_from=self._spec.date_from,
            date_to=self._spec.date_to,
            pinned_date_to=self._ctx.pinned_date_to,
            next_offset=position.end,
            total_at_offset=position.total,
            done=done,
            complete=verdict is not None and verdict.complete,
            shortfall=0 if verdict is None else verdict.shortfall,
            passes=passes,
            objects_emitted=self._emitted,
            updated_at=datetime.now(UTC),
            dialects=dict(self._dialects),
            narrowed=self._narrowing,
            duplicate_keys=self._duplicates_before + self._selection.duplicate_keys,
            resent_objects=self._resent,
        )


def _iso(moment: datetime | None) -> str:
    return "…" if moment is None else moment.isoformat().replace("+00:00", "Z")


def _raise_first_failure(tasks: set[asyncio.Task[None]]) -> None:
    """Forget finished tasks; raise the first failure among them (a lost broker)."""
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
