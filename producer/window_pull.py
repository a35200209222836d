"""Pulling one date window: fetch pages as the walk asks, produce them, checkpoint on acks.

Per page: fetch (bounded by the pull's request slots) → the walk decides what comes next →
validate and key → produce (bounded by the pull's unacknowledged-page slots) → on Kafka's ack the
walk's checkpoint advances and is recorded, and progress is reported. A window whose distinct
objects fall short of its first `X-Total-Count` is read again (bounded) before it is judged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from yarl import URL

from producer.checkpoint import CheckpointStore
from producer.config import PartnerOptions
from producer.errors import PartnerProtocolError, PullError
from producer.kafka import KafkaOutput, OutMessage
from producer.keystate import KeyState, content_digest, key_hash
from producer.messages import MessageBuilder, PageMessages
from producer.ocpi.client import FetchedPage, LinkGoneError, OcpiHttp, PageContext
from producer.ocpi.pagination import (
    PageOutcome,
    PageRequest,
    PaginationLoop,
    WindowWalk,
    plain_offset_of,
)
from producer.ocpi.versions import ModuleEndpoint
from producer.planning import format_ocpi_datetime, page_url
from producer.progress import ProgressReporter
from schemas.records import WindowCheckpoint, WindowSpec

log = logging.getLogger("ocpi_puller")
MAX_WINDOW_PASSES = 3


@dataclass(slots=True)
class PullCounters:
    """Counts shared by every window of one pull."""

    step_backs: int = 0
    duplicate_keys: int = 0
    re_reads_suppressed: int = 0
    outside_window: int = 0
    found_by_probing: int = 0
    skipped_unchanged: int = 0
    resent_objects: int = 0
    full_page_without_link: int = 0


@dataclass(slots=True)
class PullContext:
    """What every window of one pull shares."""

    pull_id: str
    partner: str
    endpoint: ModuleEndpoint
    options: PartnerOptions
    limit: int
    pinned_date_to: datetime
    http: OcpiHttp
    kafka: KafkaOutput
    builder: MessageBuilder
    store: CheckpointStore
    progress: ProgressReporter
    topic: str
    deadletter_topic: str
    request_slots: asyncio.Semaphore
    unacked_pages: asyncio.Semaphore
    counters: PullCounters = field(default_factory=PullCounters)
    keystate: KeyState | None = None  # with --skip-unchanged or --emit-tombstones


AckMark = tuple[float, int, int | None, int]


@dataclass(frozen=True, slots=True)
class WindowResult:
    """How a window ended."""

    index: int
    complete: bool
    objects_emitted: int
    distinct: int
    first_total: int | None
    shortfall: int
    passes: int
    problem: str | None = None
    # At each acknowledgement: (monotonic time, checkpoint position, total then, end of the
    # furthest page acknowledged). Where to replay from, and to, if the broker lost recently
    # acknowledged writes.
    ack_history: tuple[AckMark, ...] = ()


class WindowPull:
    """One window's pull, possibly resumed from a checkpoint."""

    def __init__(
        self,
        ctx: PullContext,
        spec: WindowSpec,
        resume: WindowCheckpoint | None,
        *,
        stop_at: int | None = None,
    ) -> None:
        self._stop_at = stop_at
        self._ctx = ctx
        self._spec = spec
        self._resume = resume
        # key hash -> value hash of every valid object this window saw (for the completeness
        # check and to not produce an unchanged object twice when a step-back re-reads it).
        self._seen: dict[int, int] = {}
        # A partner listing one key twice in a page fills two list slots: count the extra ones.
        self._repeats_in_pages = 0
        self._from_s = None if spec.date_from is None else spec.date_from.timestamp()
        self._to_s = spec.date_to.timestamp()
        self._from_text = None if spec.date_from is None else format_ocpi_datetime(spec.date_from)
        self._to_text = format_ocpi_datetime(spec.date_to)
        self._emitted = 0 if resume is None else resume.objects_emitted
        start = (0, None) if resume is None else (resume.next_offset, resume.total_at_offset)
        self._ack_history: list[AckMark] = [(time.monotonic(), start[0], start[1], start[0])]
        self._furthest_acked = start[0]
        self._base_url = self._url(0)

    @property
    def _received(self) -> int:
        """Distinct objects received (valid or not), plus keys a page listed more than once."""
        return len(self._seen) + self._repeats_in_pages

    def _url(self, offset: int) -> URL:
        ctx = self._ctx
        return page_url(
            ctx.endpoint.url,
            module=ctx.endpoint.module,
            ocpi_version=ctx.endpoint.ocpi_version,
            date_from=self._spec.date_from,
            date_to=self._spec.date_to,
            offset=offset,
            limit=self._ctx.limit,
        )

    async def run(self) -> WindowResult:
        """Pull the window to the end (re-reading it when it comes up short)."""
        start_offset, start_total = 0, None
        if self._resume is not None:
            start_offset, start_total = self._resume.next_offset, self._resume.total_at_offset
        passes = 0
        while True:
            passes += 1
            walk = WindowWalk(
                start_offset,
                start_total,
                max_ahead=self._ctx.options.fanout,
                probe_past_end=self._ctx.options.probe_past_end,
                stop_at=self._stop_at,
            )
            try:
                await self._drive(walk, passes)
            except PaginationLoop as loop:
                return await self._finish(
                    walk, passes, start_offset, problem=f"{loop.reason}: {loop}"
                )
            self._ctx.counters.step_backs += walk.patches
            self._ctx.counters.found_by_probing += walk.found_by_probing
            if self._stop_at is not None:
                # A re-read stretch: the window's counts were judged by its first reading.
                return await self._finish(walk, passes, start_offset, stretch=True)
            if walk.ended_full_without_link:
                self._ctx.counters.full_page_without_link += 1
            expected = max(0, (walk.first_total or 0) - start_offset)
            shortfall = max(0, expected - self._received)
            if shortfall == 0 or walk.first_total is None or passes >= MAX_WINDOW_PASSES:
                return await self._finish(walk, passes, start_offset)
            self._ctx.progress.warning(
                "window_short",
                f"window {self._spec.index}: {self._received} distinct objects for a reported "
                f"total of {expected}; reading the window again",
                window=self._spec.index,
            )
            start_offset, start_total = 0, None

    async def _finish(
        self,
        walk: WindowWalk,
        passes: int,
        start_offset: int,
        problem: str | None = None,
        *,
        stretch: bool = False,
    ) -> WindowResult:
        expected = max(0, (walk.first_total or 0) - start_offset)
        shortfall = 0 if stretch else max(0, expected - self._received)
        # What is still short after re-reads is explained if the partner itself reported the
        # window shrinking by at least as much (objects updated past date_to or deleted).
        latest = walk.latest_total
        explained = latest is not None and self._received >= max(0, latest - start_offset)
        complete = problem is None and walk.complete and (shortfall == 0 or explained)
        ctx = self._ctx
        await ctx.store.save_window(
            self._checkpoint(walk, done=True, complete=complete, shortfall=shortfall, passes=passes)
        )
        ctx.progress.window_done(
            window=self._spec.index,
            date_from=self._spec.date_from,
            date_to=self._spec.date_to,
            complete=complete,
            objects_emitted=self._emitted,
            distinct_objects=len(self._seen),
            first_total=walk.first_total,
            shortfall=shortfall,
            passes=passes,
            step_backs=walk.patches,
        )
        if problem is not None:
            ctx.progress.warning(
                "pagination_loop", f"window {self._spec.index}: {problem}", self._spec.index
            )
        return WindowResult(
            self._spec.index,
            complete,
            self._emitted,
            len(self._seen),
            walk.first_total,
            shortfall if not complete else 0,
            passes,
            problem,
            tuple(self._ack_history),
        )

    def _checkpoint(
        self,
        walk: WindowWalk,
        *,
        done: bool,
        complete: bool = False,
        shortfall: int = 0,
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
            complete=complete,
            shortfall=shortfall,
            passes=passes,
            objects_emitted=self._emitted,
            updated_at=datetime.now(UTC),
        )

    # -- the loop ----------------------------------------------------------------------------------

    async def _fetch(self, request: PageRequest) -> FetchedPage:
        ctx = self._ctx
        url = (
            URL(request.url, encoded=True) if request.url is not None else self._url(request.offset)
        )
        async with ctx.request_slots:
            return await ctx.http.fetch_page(
                url,
                endpoint=ctx.endpoint.url,
                context=PageContext(self._spec.index, request.offset, ctx.limit),
                follow=request.url is not None,
            )

    def _outcome(self, page: FetchedPage) -> PageOutcome:
        next_offset = None
        if page.next_url is not None:
            next_offset = plain_offset_of(page.next_url, self._base_url)
        return PageOutcome(
            count=len(page.envelope.items),
            total=page.total,
            limit=page.limit,
            next_url=None if page.next_url is None else str(page.next_url),
            next_offset=next_offset,
        )

    async def _drive(self, walk: WindowWalk, pass_number: int) -> None:
        fetches: dict[asyncio.Task[FetchedPage], PageRequest] = {}
        acks: set[asyncio.Task[None]] = set()
        try:
            while True:
                for request in walk.next_requests():
                    fetches[asyncio.create_task(self._fetch(request))] = request
                if walk.finished and not fetches and not acks:
                    return
                if not fetches and not acks:
                    raise PartnerProtocolError("pagination stalled: nothing left to fetch or await")
                done, _ = await asyncio.wait([*fetches, *acks], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task in acks:
                        acks.discard(task)
                        task.result()
                        continue
                    request = fetches.pop(task)  # type: ignore[arg-type]
                    try:
                        page: FetchedPage = task.result()  # type: ignore[assignment]
                    except LinkGoneError:
                        walk.on_link_lost(request)
                        continue
                    walk.on_page(request, self._outcome(page))
                    acks.add(asyncio.create_task(await self._produce(walk, request, page)))
                    if page.refused_next is not None:
                        raise page.refused_next
        except PullError:
            # Whatever was produced still gets acknowledged and checkpointed before failing.
            await _cancel_all(fetches)
            await asyncio.gather(*acks, return_exceptions=True)
            raise
        finally:
            await _cancel_all([*fetches, *acks])

    async def _produce(self, walk: WindowWalk, request: PageRequest, page: FetchedPage) -> Any:
        ctx = self._ctx
        messages = ctx.builder.build(
            page.envelope.items, request.offset, ctx.http.redact(page.url), page.traceparent
        )
        messages = self._select(page.envelope.items, messages)
        ctx.counters.duplicate_keys += messages.duplicate_keys
        self._repeats_in_pages += messages.duplicate_keys
        await ctx.unacked_pages.acquire()
        try:
            objects_ack = await ctx.kafka.send(ctx.topic, messages.objects)
            dead_ack = await ctx.kafka.send(ctx.deadletter_topic, messages.dead_letters)
        except BaseException:
            ctx.unacked_pages.release()
            raise
        page_end = request.offset + len(page.envelope.items)
        return self._await_acks(walk, request, page_end, messages, [objects_ack, dead_ack])

    def _select(self, items: list[Any], messages: PageMessages) -> PageMessages:
        """Drop what this window must not produce: objects it already produced unchanged (a
        step-back re-read), and objects whose `last_updated` lies outside the window (a 2.1.1
        window starts a second early, and some partners treat `date_to` as inclusive: the
        neighbouring window produces those)."""
        counters = self._ctx.counters
        kept: list[OutMessage] = []
        kept_keys: list[str] = []
        kept_positions: list[int] = []
        for message, key, position in zip(
            messages.objects, messages.keys, messages.positions, strict=True
        ):
            seen_key, seen_value = hash(key), hash(message.value)
            if self._seen.get(seen_key) == seen_value:
                counters.re_reads_suppressed += 1
                continue
            self._seen[seen_key] = seen_value
            if not self._inside(items[position]):
                counters.outside_window += 1
                continue
            kept.append(message)
            kept_keys.append(key)
            kept_positions.append(position)
        for identity in messages.dead_identities:
            # Received, just not valid: it counts toward the window's total all the same.
            self._seen.setdefault(hash(identity), 0)
        digests: list[int] = []
        keystate = self._ctx.keystate
        if keystate is not None:
            # Everything the partner listed exists there, produced or not: never tombstone it.
            keystate.mark_seen([key_hash(k) for k in (*messages.keys, *messages.dead_keys)])
            if self._ctx.options.skip_unchanged:
                kept, kept_keys, kept_positions, digests = self._changed_only(
                    keystate, kept, kept_keys, kept_positions
                )
            else:
                digests = [content_digest(m.value or b"") for m in kept]
        return PageMessages(
            kept,
            messages.dead_letters,
            kept_keys,
            kept_positions,
            messages.duplicate_keys,
            messages.dead_identities,
            messages.dead_keys,
            digests,
        )

    def _changed_only(
        self,
        keystate: KeyState,
        kept: list[OutMessage],
        keys: list[str],
        positions: list[int],
    ) -> tuple[list[OutMessage], list[str], list[int], list[int]]:
        """P8: drop objects whose content (without last_updated) is what was produced before."""
        digests = [content_digest(m.value or b"") for m in kept]
        previous = keystate.previous_digests([key_hash(k) for k in keys])
        out: tuple[list[OutMessage], list[str], list[int], list[int]] = ([], [], [], [])
        for message, key, position, digest, before in zip(
            kept, keys, positions, digests, previous, strict=True
        ):
            if digest == before:
                self._ctx.counters.skipped_unchanged += 1
                continue
            out[0].append(message)
            out[1].append(key)
            out[2].append(position)
            out[3].append(digest)
        return out

    def _inside(self, item: Any) -> bool:
        value = item.get("last_updated") if isinstance(item, dict) else None
        if type(value) is str and len(value) == 20 and value[10] == "T" and value[19] == "Z":
            # The canonical form sorts as text exactly as it does as time.
            return (self._from_text is None or value >= self._from_text) and value < self._to_text
        stamp = _epoch_seconds(value)
        if stamp is None:
            return True
        if self._from_s is not None and stamp < self._from_s:
            return False
        return stamp < self._to_s

    async def _await_acks(
        self,
        walk: WindowWalk,
        request: PageRequest,
        page_end: int,
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
                await ctx.kafka.send_and_wait(ctx.topic, messages.objects)
                await ctx.kafka.send_and_wait(ctx.deadletter_topic, messages.dead_letters)
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
        walk.on_acked(request.request_id)
        self._furthest_acked = max(self._furthest_acked, page_end)
        position = walk.checkpoint
        self._ack_history.append(
            (time.monotonic(), position.end, position.total, self._furthest_acked)
        )
        if position != before:  # a step-back link may end where the last one did, fresher
            await ctx.store.save_window(self._checkpoint(walk, done=False))
        ctx.progress.page(
            window=self._spec.index,
            offset=request.offset,
            count=len(messages.objects),
            dead=len(messages.dead_letters),
            total=walk.latest_total,
        )


@dataclass(frozen=True, slots=True)
class Replay:
    """A stretch of a window to read again: from `offset` (total then) up to `stop_at`."""

    offset: int
    total: int | None
    stop_at: int


def replay_stretch(
    history: tuple[AckMark, ...], outages: list[float], replay_s: float
) -> Replay | None:
    """What of a window must be read again after broker outages, or None.

    A broker that restarts may lose writes it acknowledged shortly before (noida-db does so for
    requests it answers while shutting down; so can a single-replica Kafka on a crash). Every
    position acknowledged within `replay_s` before an outage was noticed is suspect, up to the end
    of the furthest page acknowledged when it was noticed (pages are acknowledged out of order;
    what was acknowledged after the broker came back is durable). The stretch starts at the
    checkpoint position of the window before the suspect time.
    """
    if not history or replay_s <= 0:
        return None
    start: tuple[int, int | None] | None = None
    stop = 0
    for outage in outages:
        cutoff = outage - replay_s
        if history[-1][0] < cutoff:
            continue  # the window was finished before the suspect stretch began
        before = [entry for entry in history if entry[0] <= cutoff] or [history[0]]
        _, offset, total, _ = before[-1]
        at_outage = [entry for entry in history if entry[0] <= outage] or [history[0]]
        end = at_outage[-1][3]
        if end <= offset:
            continue  # nothing was acknowledged in the suspect time
        if start is None or offset < start[0]:
            start = (offset, total)
        stop = max(stop, end)
    return None if start is None else Replay(start[0], start[1], stop)


def _epoch_seconds(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


async def _cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the first failure already propagated
