"""At-least-once delivery (`--delivery at-least-once`, the default).

A page's records are produced as soon as it is built (bounded by the pull's unacknowledged-page
slots); once Kafka acknowledges them they are durable, the walk's checkpoint may pass the page, and
the window's checkpoint is recorded. A page Kafka did not acknowledge is produced again (duplicates
are harmless) until the broker is back or the deadline passes. After the windows, what a broker
outage may have lost though acknowledged is read again (replay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError

from producer.errors import PullError
from producer.kafka.checkpoints import CheckpointStore, StoredState
from producer.kafka.output import KafkaOutput, Marks
from producer.kafka.records import PullTopics
from producer.ocpi.paging.pages import PageDriver, WindowPage
from producer.ocpi.paging.pagination import WindowWalk
from producer.pull.context import PullContext
from producer.pull.ledger import AckedPages
from producer.pull.records import PageMessages
from producer.pull.replay import replay_after_outages, replay_lost_writes
from producer.pull.summary import PullSummary
from producer.pull.verdict import WindowResult
from producer.pull.window_state import WindowState
from producer.pull.windows import pull_windows
from schemas.records import PullPlan, WindowSpec

log = logging.getLogger("ocpi_puller")


class AtLeastOnce:
    """Every record produced until Kafka acknowledges it; checkpoints follow acknowledgements."""

    committed_within_s: float | None = None  # every acknowledged record counts

    def __init__(
        self, kafka: KafkaOutput, topics: PullTopics, *, partner: str, module: str, replay_s: float
    ) -> None:
        self._kafka = kafka
        self._topics = topics
        self._partner = partner
        self._module = module
        self._replay_s = replay_s

    async def start(self) -> CheckpointStore:
        """Checkpoints are produced like records (and read back as the topic holds them)."""
        return CheckpointStore(self._kafka, self._topics.checkpoints, self._partner, self._module)

    async def stop(self) -> None:
        """Nothing of its own to close."""

    async def read_pass(
        self,
        ctx: PullContext,
        window: WindowState,
        driver: PageDriver,
        messages_of: Callable[[WindowPage], PageMessages],
        tally: set[int] | None,
    ) -> None:
        """One pass of one window, its pages acknowledged in any order."""
        await AckedPass(ctx, window, driver.walk, tally).read(driver, messages_of)

    async def pull(
        self,
        ctx: PullContext,
        plan: PullPlan,
        windows: list[WindowSpec],
        state: StoredState,
        summary: PullSummary,
    ) -> list[WindowResult]:
        """The windows; then what a broker outage may have lost is read again, and what Kafka
        shows it lost is written again."""
        outages_before = len(ctx.kafka.outages)
        results = await pull_windows(ctx, windows, state)
        results = await replay_after_outages(
            ctx, plan, windows, results, outages_before=outages_before,
            replay_s=self._replay_s, summary=summary,
        )  # fmt: skip
        return await replay_lost_writes(ctx, plan, windows, results, summary=summary)


@dataclass(frozen=True, slots=True)
class SentPage:
    """A page whose records were sent: the walk's request, its start and end offsets, and what
    its records weigh (bytes in flight until acknowledged)."""

    request_id: int
    offset: int
    end: int
    size: int


class AckedPass:
    """One pass of one window: pages sent as they arrive, each done when Kafka acknowledges it."""

    def __init__(
        self, ctx: PullContext, window: WindowState, walk: WindowWalk, tally: set[int] | None
    ) -> None:
        self._ctx = ctx
        self._window = window
        self._walk = walk
        self._ledger = AckedPages(walk, window.selection, tally)

    async def read(
        self, driver: PageDriver, messages_of: Callable[[WindowPage], PageMessages]
    ) -> None:
        """Every page the driver brings, produced; returns when all are acknowledged."""
        acks: set[asyncio.Task[None]] = set()
        try:
            async with contextlib.aclosing(driver.pages()) as pages:
                async for fetched in pages:
                    _raise_first_failure(acks)
                    acks.add(asyncio.create_task(await self._send(fetched, messages_of(fetched))))
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

    async def _send(self, fetched: WindowPage, built: PageMessages) -> Coroutine[Any, Any, None]:
        """Queue a page's records; returns the wait for their acknowledgement."""
        ctx = self._ctx
        messages = self._ledger.fetched(built)
        size = messages.size()
        await ctx.unacked_pages.acquire()
        try:
            await ctx.unacked_bytes.acquire(size)
        except BaseException:
            ctx.unacked_pages.release()
            raise
        try:
            objects_ack = await ctx.kafka.send(ctx.topics.objects, messages.objects)
            dead_ack = await ctx.kafka.send(ctx.topics.deadletter, messages.dead_letters)
        except BaseException:
            ctx.unacked_pages.release()
            ctx.unacked_bytes.release(size)
            raise
        page_end = fetched.offset + len(fetched.items)
        # The wait holds the page's records (bytes), never the parsed page: unacknowledged pages
        # are what a pull keeps in memory, bounded in pages and in bytes.
        sent = SentPage(fetched.request.request_id, fetched.offset, page_end, size)
        return self._await_acks(sent, messages, [objects_ack, dead_ack])

    async def _await_acks(
        self, sent: SentPage, messages: PageMessages, acks: list[asyncio.Future[Marks]]
    ) -> None:
        ctx, window, walk = self._ctx, self._window, self._walk
        try:
            try:
                marks = await ctx.kafka.wait_acked(acks)
            except KafkaError as error:
                # Never count a page as done that Kafka did not acknowledge: produce it again
                # (duplicates are harmless) until the broker is back or the deadline passes.
                log.warning("Kafka did not acknowledge a page (%s); producing it again", error)
                ctx.counters.resent_objects += len(messages.objects)
                window.resent += len(messages.objects)
                marks = await ctx.kafka.send_and_wait(ctx.topics.objects, messages.objects)
                marks.update(
                    await ctx.kafka.send_and_wait(ctx.topics.deadletter, messages.dead_letters)
                )
        finally:
            ctx.unacked_pages.release()
            ctx.unacked_bytes.release(sent.size)
        if ctx.keystate is not None and messages.objects:
            # Only now that Kafka has the objects may their digests say they were produced.
            records = [
                ctx.keystate.digest_record(key, digest)
                for key, digest in zip(messages.keys, messages.digests, strict=True)
            ]
            await ctx.kafka.send_and_wait(ctx.keystate.topic, records)
        new = self._ledger.acknowledged(sent.request_id, messages)
        window.acknowledged(walk, sent.end, new, marks)
        if window.rereading:
            # Re-reading a stretch after an outage: what it sends was sent before. It leaves
            # the window's checkpoint, which its first reading finished, as it is.
            ctx.counters.resent_objects += len(messages.objects)
            return
        if messages.dialects:
            window.count_dialects(messages)  # counted once in Kafka, as the checkpoint says
        # Saved at every acknowledgement, moved or not: its figures count what Kafka has.
        await ctx.store.save_window(window.checkpoint(walk, done=False))
        ctx.progress.page(
            window=window.spec.index,
            offset=sent.offset,
            count=len(messages.objects),
            dead=len(messages.dead_letters),
            total=walk.latest_total,
            new=new,
        )


def _raise_first_failure(tasks: set[asyncio.Task[None]]) -> None:
    """Forget finished tasks; raise the first failure among them (a lost broker)."""
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
