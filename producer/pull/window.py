"""The window loop: one date window's pages → records → send → ack → checkpoint.

Per page (from the page driver): build and select its records → produce them (bounded by the
pull's unacknowledged-page slots) → on Kafka's acknowledgement the walk's checkpoint advances and is
recorded, and progress is reported. A window whose distinct objects fall short of its first
`X-Total-Count` is read again (bounded) before it is judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError

from producer.errors import PaginationLoop, PullError
from producer.kafka.checkpoints import StoredState
from producer.ocpi.pages import ListQuery, PageDriver, WindowPage
from producer.ocpi.pagination import WindowWalk
from producer.ocpi.verdict import WindowVerdict, judge_window, read_again
from producer.pull.context import PullContext
from producer.pull.records import PageMessages
from producer.pull.selection import WindowSelection
from producer.pull.transacted import TransactedPass
from producer.pull.verdict import AckMark, WindowResult
from schemas.records import WindowCheckpoint, WindowSpec

log = logging.getLogger("ocpi_puller")


async def pull_windows(
    ctx: PullContext, windows: list[WindowSpec], state: StoredState
) -> list[WindowResult]:
    """This shard's windows, `concurrency` at a time; windows a resume finds done are taken from
    their checkpoints. One window's fatal error ends them all, with that error."""
    slots = asyncio.Semaphore(ctx.options.windows_at_once)
    results: list[WindowResult] = []

    async def one(spec: WindowSpec) -> None:
        checkpoint = state.windows.get(spec.index)
        if checkpoint is not None and checkpoint.done:
            results.append(result_from_checkpoint(checkpoint))
            return
        async with slots:
            results.append(await WindowPull(ctx, spec, checkpoint).run())

    try:
        async with asyncio.TaskGroup() as group:
            for spec in windows:
                group.create_task(one(spec))
    except BaseExceptionGroup as failures:
        raise first_pull_error(failures) from None
    return sorted(results, key=lambda r: r.index)


def result_from_checkpoint(checkpoint: WindowCheckpoint) -> WindowResult:
    """A window finished before a resume, as its checkpoint tells it."""
    return WindowResult(
        checkpoint.window,
        checkpoint.complete,
        checkpoint.objects_emitted,
        checkpoint.objects_emitted,
        None,
        checkpoint.shortfall,
        checkpoint.passes,
    )


def first_pull_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first PullError in a (nested) exception group, else the group itself."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found = first_pull_error(error)
            if isinstance(found, PullError):
                return found
        elif isinstance(error, PullError):
            return error
    return group


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
            keystate=ctx.keystate,
            skip_unchanged=ctx.options.skip_unchanged,
            committed=ctx.committed,
        )
        self._emitted = 0 if resume is None else resume.objects_emitted
        start = (0, None) if resume is None else (resume.next_offset, resume.total_at_offset)
        self._ack_history: list[AckMark] = [(time.monotonic(), start[0], start[1], start[0])]
        self._furthest_acked = start[0]

    async def run(self) -> WindowResult:
        """Pull the window to the end (re-reading it when it comes up short)."""
        ctx, resume = self._ctx, self._resume
        start_offset, start_total = (
            (0, None)
            if resume is None
            else (
                resume.next_offset,
                resume.total_at_offset,
            )
        )
        passes = 0
        while True:
            passes += 1
            walk = WindowWalk(
                start_offset,
                start_total,
                max_ahead=ctx.options.fanout,
                probe_past_end=ctx.options.probe_past_end,
                stop_at=self._stop_at,
            )
            problem = None
            try:
                await self._read(walk)
            except PaginationLoop as loop:
                problem = f"{loop.reason}: {loop}"
            verdict = judge_window(
                walk_complete=walk.complete,
                first_total=walk.first_total,
                latest_total=walk.latest_total,
                start_offset=start_offset,
                received=self._selection.received,
                problem=problem,
                stretch=self._stop_at is not None,
            )
            ctx.counters.skipped_unchanged += self._selection.take_skipped_unchanged()
            if problem is None:
                self._count(walk)
            if self._stop_at is not None or not read_again(verdict, walk.first_total, passes):
                return await self._finish(walk, verdict, passes)
            ctx.progress.warning(
                "window_short",
                f"window {self._spec.index}: {self._selection.received} distinct objects for a "
                f"reported total of {verdict.expected}; reading the window again",
                window=self._spec.index,
            )
            start_offset, start_total = 0, None

    def _count_dialects(self, messages: PageMessages) -> None:
        counters = self._ctx.counters
        for dialect, count in messages.dialect_counts().items():
            counters.dialects[dialect.value] += count
            example = messages.examples.get(dialect)
            if example is not None:
                counters.dialect_examples.setdefault(dialect.value, example)

    def _count(self, walk: WindowWalk) -> None:
        counters = self._ctx.counters
        counters.step_backs += walk.patches
        counters.found_by_probing += walk.found_by_probing
        if self._stop_at is None and walk.ended_full_without_link:
            counters.full_page_without_link += 1

    async def _read(self, walk: WindowWalk) -> None:
        """One pass: every page the walk asks for, produced; returns when all are acknowledged."""
        ctx = self._ctx
        driver = PageDriver(
            ctx.http,
            self._query,
            walk,
            window=self._spec.index,
            repair=ctx.repair,
        )
        if ctx.units is not None:  # exactly-once: pages go into commit units
            transacted = TransactedPass(ctx, self._spec.index, walk, self._covered)
            await transacted.read(driver, self._messages)
            return
        acks: set[asyncio.Task[None]] = set()
        try:
            async with contextlib.aclosing(driver.pages()) as pages:
                async for fetched in pages:
                    _raise_first_failure(acks)
                    acks.add(asyncio.create_task(await self._produce(walk, fetched)))
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
        """The records of a page that this window produces."""
        ctx = self._ctx
        page = fetched.page
        read = ctx.reader.read(fetched.items, fetched.text)
        messages = ctx.builder.build(
            read, fetched.offset, ctx.http.redact(page.url), page.traceparent
        )
        ctx.counters.duplicate_keys += messages.duplicate_keys
        messages = self._selection.select(messages)
        if messages.dialects:
            self._count_dialects(messages)
        return messages

    def _covered(self, walk: WindowWalk, objects: int) -> WindowCheckpoint:
        """Exactly-once: pages holding `objects` are settled; the checkpoint that covers them."""
        self._emitted += objects
        return self._checkpoint(walk, done=False)

    async def _produce(self, walk: WindowWalk, fetched: WindowPage) -> Coroutine[Any, Any, None]:
        """Queue a page's records; returns the wait for their acknowledgement."""
        ctx = self._ctx
        messages = self._messages(fetched)
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
        return self._await_acks(walk, placed, messages, [objects_ack, dead_ack])

    async def _await_acks(
        self,
        walk: WindowWalk,
        placed: Placed,
        messages: PageMessages,
        acks: list[asyncio.Future[None]],
    ) -> None:
        ctx = self._ctx
        try:
            try:
                await ctx.kafka.wait_acked(acks)
            except KafkaError as error:
                # Never count a page as done that Kafka did not acknowledge: produce it again
                # (duplicates are harmless) until the broker is back or the deadline passes.
                log.warning("Kafka did not acknowledge a page (%s); producing it again", error)
                ctx.counters.resent_objects += len(messages.objects)
                await ctx.kafka.send_and_wait(ctx.topics.objects, messages.objects)
                await ctx.kafka.send_and_wait(ctx.topics.deadletter, messages.dead_letters)
        finally:
            ctx.unacked_pages.release()
        if ctx.keystate is not None and messages.objects:
            # Only now that Kafka has the objects may their digests say they were produced.
            records = [
                ctx.keystate.digest_record(key, digest)
                for key, digest in zip(messages.keys, messages.digests, strict=True)
            ]
            await ctx.kafka.send_and_wait(ctx.keystate.topic, records)
        self._emitted += len(messages.objects)
        before = walk.checkpoint
        walk.on_acked(placed.request_id)
        self._furthest_acked = max(self._furthest_acked, placed.end)
        position = walk.checkpoint
        self._ack_history.append(
            (time.monotonic(), position.end, position.total, self._furthest_acked)
        )
        if self._stop_at is not None:
            # Re-reading a stretch after an outage: what it sends was sent before. It leaves
            # the window's checkpoint, which its first reading finished, as it is.
            ctx.counters.resent_objects += len(messages.objects)
            return
        if position != before:  # a step-back link may end where the last one did, fresher
            await ctx.store.save_window(self._checkpoint(walk, done=False))
        ctx.progress.page(
            window=self._spec.index,
            offset=placed.offset,
            count=len(messages.objects),
            dead=len(messages.dead_letters),
            total=walk.latest_total,
        )

    async def _finish(self, walk: WindowWalk, verdict: WindowVerdict, passes: int) -> WindowResult:
        ctx, spec = self._ctx, self._spec
        result = WindowResult(
            spec.index,
            verdict.complete,
            self._emitted,
            self._selection.distinct,
            walk.first_total,
            verdict.unexplained_shortfall,
            passes,
            verdict.problem,
            tuple(self._ack_history),
        )
        if self._stop_at is not None:
            return result  # a re-read stretch: the window's own reading reported and recorded it
        await ctx.store.save_window(
            self._checkpoint(walk, done=True, verdict=verdict, passes=passes)
        )
        ctx.progress.window_done(
            window=spec.index,
            date_from=spec.date_from,
            date_to=spec.date_to,
            complete=verdict.complete,
            objects_emitted=self._emitted,
            distinct_objects=self._selection.distinct,
            first_total=walk.first_total,
            shortfall=verdict.shortfall,
            passes=passes,
            step_backs=walk.patches,
        )
        if verdict.problem is not None:
            ctx.progress.warning(
                "pagination_loop", f"window {spec.index}: {verdict.problem}", spec.index
            )
        return result

    def _checkpoint(
        self,
        walk: WindowWalk,
        *,
        done: bool,
        verdict: WindowVerdict | None = None,
        passes: int = 1,
    ) -> WindowCheckpoint:
        position = walk.checkpoint
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
        )


def _raise_first_failure(tasks: set[asyncio.Task[None]]) -> None:
    """Forget finished tasks; raise the first failure among them (a lost broker)."""
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
