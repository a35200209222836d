"""Committing units, one transaction at a time, and making sure Kafka kept them.

Windows add settled pages and their checkpoints to the open unit; `run()` commits it when it is
due (`--transaction-pages` or `--transaction-ms`) while the windows fill the next one, and windows
wait while a full unit waits behind a commit (bounded memory). `flush()` commits what is open.

A broker that restarts may drop what it acknowledged just before, confirmed commits included
(noida-db 0.2.3 does, for up to ~1 s of its shutdown; a single-replica Kafka can on a crash): after
any outage, and after any commit whose outcome is unknown, the recent units are looked for in a
committed read of the checkpoints topic before anything else is committed. A unit that is gone
means the broker's state is an earlier, consistent one: the pull must go on from what Kafka has
committed (`CommittedStateLost`), as a resumed pull would. With the replay window off
(`--kafka-replay-s 0`) no recent units are kept, so a commit of unknown outcome does the same.
A checkpoint written by another process with this transactional id means this one was fenced.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.errors import KafkaError

from producer.errors import KafkaUnavailableError
from producer.kafka.committed import read_committed
from producer.kafka.consume import end_offsets
from producer.kafka.durability import AckedOffsets, Losses
from producer.kafka.output import KafkaOutput, KafkaWait
from producer.kafka.partitioning import partition_for
from producer.kafka.records import OutMessage
from producer.kafka.transactions import CommitUnsure, Transactor
from producer.kafka.units import CommitUnit, PageNote, Routed, UnitAssembler, UnitPolicy
from producer.retry import RetryPolicy, retry_until

log = logging.getLogger("ocpi_puller")

WRITER_HEADER = "ocpi-writer"
# Waits before a new transactional producer takes over after a failed commit, and between
# committed reads that check what Kafka kept; both until the Kafka deadline.
COMMIT = RetryPolicy(base_delay_s=0.5, max_delay_s=10.0)
READ_BACK = RetryPolicy(base_delay_s=0.5, max_delay_s=10.0)
READ_BACK_MARGIN_MS = 2000


class CommittedStateLost(Exception):
    """Kafka no longer holds transactions it confirmed: go on from what it has committed."""


@dataclass(frozen=True, slots=True)
class Remembered:
    """A committed unit, kept a while to check it survived an outage."""

    sequence: int
    topic: str
    marker: OutMessage
    sent_ms: int
    committed_at: float


class UnitCommitter:
    """The open unit, its commits through one transactional producer, and their checks."""

    def __init__(
        self,
        kafka: KafkaOutput,
        transactor: Transactor,
        policy: UnitPolicy,
        *,
        deadline_s: float,
        verify_s: float,
        on_committed: Callable[[CommitUnit], None],
        on_wait: Callable[[KafkaWait], None] | None = None,
    ) -> None:
        self._kafka = kafka
        self._transactor = transactor
        self._units: UnitAssembler = UnitAssembler(policy)
        self._deadline_s = deadline_s
        self._verify_s = verify_s
        self._on_committed = on_committed
        self._on_wait = on_wait
        self._writer = f"{transactor.transactional_id}#{uuid.uuid4().hex[:12]}".encode()
        # Every batch of every confirmed commit, by offset (durability.py).
        self.committed = AckedOffsets()
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._room = asyncio.Event()
        self._committing = False
        self._closing = False
        self._recent: list[Remembered] = []
        self._outages_seen = (len(kafka.outages), len(transactor.outages))
        self._unverified_since: float | None = None
        self._rng = random.Random()
        # A commit that ended neither committed nor failed (cancelled under way): its unit is
        # gone from memory, so the pull must go on from what Kafka has committed.
        self._interrupted = False
        self.transactions = 0

    # -- what windows call ----------------------------------------------------------------------

    def add(
        self,
        *,
        plain: list[Routed],
        keyed: list[Routed],
        pages: int = 0,
        size: int = 0,
        notes: list[PageNote] | None = None,
    ) -> None:
        """Records for the open unit, all in the same unit (keyed ones are checkpoints); `size`:
        what the pages' records weigh."""
        self._check_whole()
        stamped = [(topic, self._stamp(message)) for topic, message in keyed]
        now = time.monotonic()
        self._units.add(now, plain=plain, keyed=stamped, pages=pages, size=size, notes=notes or ())
        self._changed.set()

    def put(self, topic: str, record: OutMessage) -> None:
        """A checkpoint record for the open unit."""
        self.add(plain=[], keyed=[(topic, record)])

    async def room(self) -> None:
        """Wait while a full unit is already waiting behind a commit in progress."""
        while self._committing and self._units.policy.full(
            self._units.open.pages, self._units.open.size
        ):
            self._room.clear()
            await self._room.wait()

    def _check_whole(self) -> None:
        if self._interrupted:
            raise CommittedStateLost("a commit was interrupted: its unit is no longer at hand")

    def _stamp(self, message: OutMessage) -> OutMessage:
        # Who wrote a checkpoint: one of ours, or another process's with the same id (fenced).
        return OutMessage(
            message.key,
            message.value,
            [*message.record_headers(), (WRITER_HEADER, self._writer)],
            message.partition_key,
        )

    # -- committing -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Commit each unit as it becomes due, until `close()`."""
        while True:
            await self._until_due()
            if self._closing:
                return
            async with self._lock:
                if not self._units.open.empty:
                    await self._commit_open()

    def close(self) -> None:
        """Let `run()` end (what is still open waits for `flush()`)."""
        self._closing = True
        self._changed.set()

    async def flush(self) -> None:
        """Commit what the open unit holds (after any commit in progress)."""
        async with self._lock:
            self._check_whole()
            if not self._units.open.empty:
                await self._commit_open()

    def discard_open(self) -> None:
        """Drop what is not committed and forget what was (the pull goes on from Kafka's state)."""
        self._units.discard()
        self._closing = False
        self._interrupted = False
        self._recent.clear()
        self._unverified_since = None
        self._outages_seen = (len(self._kafka.outages), len(self._transactor.outages))

    async def lost_commits(self) -> Losses:
        """Committed writes Kafka no longer holds: a partition whose end is not past the
        highest offset of a confirmed commit, or an offset given twice. (The high watermark, not
        the last stable offset, which another process's open transaction holds back.)"""
        if asked := dict(self.committed.highest):
            asked_at = time.monotonic()
            ends = await end_offsets(self._kafka.connection, list(asked))
            self.committed.check_ends(ends, highest_asked=asked, asked_at=asked_at)
        return self.committed.take_lost()

    async def _until_due(self) -> None:
        while not self._closing:
            now = time.monotonic()
            if self._units.due(now):
                return
            self._changed.clear()
            try:
                async with asyncio.timeout(self._units.wait_s(now)):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def _commit_open(self) -> None:
        unit = self._units.take()
        self._committing = True
        try:
            await self._commit(unit)
        except BaseException:
            self._interrupted = True
            raise
        finally:
            self._committing = False
            self._room.set()
        self.transactions += 1
        self._on_committed(unit)

    async def _commit(self, unit: CommitUnit) -> None:
        give_up = time.monotonic() + self._deadline_s
        attempt = 0
        while True:
            if self._outage_noticed():
                if self._transactor.halted:  # a lost connection halts it: renew it now
                    await self._renew(KafkaUnavailableError("connection lost"), 0, give_up)
                await self._verify(None, give_up)
            sent_ms, started = int(time.time() * 1000), time.monotonic()
            try:
                written = await self._transactor.commit(unit.records())
            except CommitUnsure as error:
                attempt += 1
                log.warning("Kafka transaction failed (%s); checking what Kafka kept", error)
                self._note_outage(started)
                await self._renew(error, attempt, give_up)
                self._outage_noticed()
                if self._verify_s <= 0:
                    # No recent units kept (`--kafka-replay-s 0`), and a commit found landed by
                    # a read-back leaves no offsets for the end-of-pull check: a confirmed unit
                    # the restart dropped, its offsets then filled by this one, would go
                    # unseen. Go on from what Kafka has committed instead.
                    raise CommittedStateLost(
                        "a transaction of unknown outcome with the replay window off: going on "
                        "from what Kafka has committed"
                    ) from error
                if await self._verify((unit, sent_ms), give_up):
                    return
                continue
            self._remember(unit, sent_ms)
            now = time.monotonic()
            for batch in written:
                self.committed.acknowledged(
                    (batch.topic, batch.partition), batch.base_offset, batch.records, now
                )
            return

    def _remember(self, unit: CommitUnit, sent_ms: int) -> None:
        now = time.monotonic()
        marker = unit.marker()
        if marker is not None and self._verify_s > 0:
            self._recent.append(Remembered(unit.sequence, marker[0], marker[1], sent_ms, now))
        if self._unverified_since is None:
            horizon = now - self._verify_s
            self._recent = [r for r in self._recent if r.committed_at >= horizon]

    def _outage_noticed(self) -> bool:
        """Whether a broker connection broke since the last check (then recent units are
        checked before the next commit)."""
        output, own = self._outages_seen
        for began in [*self._kafka.outages[output:], *self._transactor.outages[own:]]:
            self._note_outage(began)
        self._outages_seen = (len(self._kafka.outages), len(self._transactor.outages))
        return self._unverified_since is not None

    def _note_outage(self, began: float) -> None:
        if self._verify_s > 0:
            since = self._unverified_since
            self._unverified_since = began if since is None else min(since, began)

    async def _renew(self, error: BaseException, attempt: int, give_up: float) -> None:
        """Wait, then replace the producer (its InitProducerId settles the transaction the old
        one left), until the Kafka deadline."""
        while True:
            wait = COMMIT.next_wait(attempt, self._rng, now=time.monotonic(), deadline=give_up)
            if wait is None:
                raise KafkaUnavailableError(
                    f"Kafka at {self._kafka.bootstrap} did not commit a transaction within "
                    f"{self._deadline_s:.0f} s ({error})"
                )
            if self._on_wait is not None:
                self._on_wait(KafkaWait("transaction", attempt, wait, str(error)))
            await asyncio.sleep(wait)
            try:
                await self._transactor.renew()
                return
            except KafkaUnavailableError as again:
                error, attempt = again, attempt + 1

    async def _verify(self, unsure: tuple[CommitUnit, int] | None, give_up: float) -> bool:
        """Look for the recent units (and `unsure`) in a committed read; True if `unsure` is
        there. Raises CommittedStateLost if a unit Kafka confirmed is gone, FencedError if
        another process wrote this id's checkpoints after this one."""
        since = self._unverified_since
        checked: list[Remembered] = []
        if since is not None:
            # What was committed shortly before the outage, and since. Even a coordinator that
            # kept this transactional id (Apache Kafka) can lose a confirmed commit: when it
            # skipped the commit's markers (transactions.py), the records stay open until a
            # newer epoch ends them, and an abort ends them aborted.
            checked = [r for r in self._recent if r.committed_at >= since - self._verify_s]
        candidates = list(checked)
        if unsure is not None:
            unit, sent_ms = unsure
            marker = unit.marker()
            if marker is None:
                raise CommittedStateLost("a transaction of unknown outcome carried no checkpoint")
            candidates.append(Remembered(unit.sequence, marker[0], marker[1], sent_ms, 0.0))
        seen = await self._read_back(candidates, give_up) if candidates else {}
        lost = [r for r in checked if (r.marker.key, r.marker.value) not in seen]
        self._unverified_since = None
        if lost:
            raise CommittedStateLost(
                f"Kafka lost {len(lost)} committed transaction(s) in an outage: going on from "
                "what it has committed"
            )
        if unsure is None:
            return False
        mine = candidates[-1].marker
        landed = (mine.key, mine.value) in seen
        if landed:
            self._recent.append(candidates[-1])
        return landed

    async def _read_back(
        self, candidates: list[Remembered], give_up: float
    ) -> dict[tuple[bytes, bytes | None], None]:
        """The (key, value) of every committed record of the candidates' partitions since the
        first was sent, retried until the deadline; fenced if a key of ours was last written by
        another process."""

        def unavailable(error: BaseException) -> KafkaUnavailableError:
            return KafkaUnavailableError(
                f"Kafka at {self._kafka.bootstrap} could not be read back within "
                f"{self._deadline_s:.0f} s after an outage ({error})"
            )

        return await retry_until(
            READ_BACK,
            lambda: self._read_once(candidates, give_up),
            retry_on=(KafkaUnavailableError,),
            give_up=unavailable,
            rng=self._rng,
            deadline=give_up,
        )

    async def _read_once(
        self, candidates: list[Remembered], give_up: float
    ) -> dict[tuple[bytes, bytes | None], None]:
        seen: dict[tuple[bytes, bytes | None], None] = {}
        ours = {r.marker.key for r in candidates}
        writers: dict[bytes, bytes | None] = {}
        for topic in {r.topic for r in candidates}:
            count = await self._kafka.partition_count(topic)
            partitions = {
                partition_for(r.marker.partition_key or r.marker.key, count)
                for r in candidates
                if r.topic == topic
            }
            start = min(r.sent_ms for r in candidates) - READ_BACK_MARGIN_MS
            try:
                async for record in read_committed(
                    self._kafka.connection,
                    topic,
                    partitions=partitions,
                    from_timestamp_ms=start,
                    deadline_s=max(1.0, min(30.0, give_up - time.monotonic())),
                ):
                    seen[(record.key, record.value)] = None
                    if record.key in ours:
                        writers[record.key] = dict(record.headers or ()).get(WRITER_HEADER)
            except (KafkaError, OSError, TimeoutError) as error:
                raise KafkaUnavailableError(type(error).__name__) from None
        if any(w is not None and w != self._writer for w in writers.values()):
            raise self._transactor.fenced()
        return seen
