"""The aiokafka shell: connection, topics, batched produce, acknowledgements, broker outages.

Messages go to per-partition outboxes (see outbox.py) on the partition Kafka's default
partitioner would choose. A page counts as produced only when every batch holding its messages is
acknowledged (acks=all, idempotent).

A slow broker is waited for, never resent to: aiokafka would time a produce request out after its
request timeout, drop the connection and send the batch again, which a busy broker may take for a
sequence gap (OutOfOrderSequenceNumber) and a lost producer. So our producer's requests may take
the whole outage deadline; `--kafka-request-timeout-s` is when a late acknowledgement is reported.
When the broker has lost this producer's identity anyway (a restarted broker answers
OutOfOrderSequenceNumber or UnknownProducerId), the producer is replaced by a new one and only the
batches it had not acknowledged are produced again (duplicates are harmless: messages are keyed).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from opentelemetry import trace

from producer.errors import KafkaUnavailableError
from producer.kafka.admin import create_missing_topics
from producer.kafka.aiokafka_internals import use_fast_lz4, warn_if_unchecked
from producer.kafka.connection import KafkaConnection, as_connection
from producer.kafka.consume import end_offsets
from producer.kafka.diagnosis import diagnose, permission_for, refusal
from producer.kafka.durability import AckedOffsets, Losses, TopicPartitionKey, Written
from producer.kafka.kept import KeptWrites
from producer.kafka.lifecycle import RenewableProducer
from producer.kafka.outbox import (
    PRODUCER_IDENTITY_LOST,
    Acked,
    DeliveryAbandoned,
    PartitionOutbox,
)
from producer.kafka.partitioning import partitions_for
from producer.kafka.permissions import check_permissions
from producer.kafka.reach import unreachable
from producer.kafka.records import OutMessage, TopicSpec
from producer.kafka.spans import end_span, failure_of, produce_span
from producer.retry import RetryPolicy

log = logging.getLogger("ocpi_puller")

# Where acknowledged messages ended: (topic, partition) -> the offset of the last of them, and
# when Kafka acknowledged them.
Marks = dict[TopicPartitionKey, Written]

# Waits while the broker is away (connect, create topics, metadata, produce, end offsets), until
# the Kafka deadline (or the connect timeout), counted from when the broker went away.
PRODUCE = RetryPolicy(base_delay_s=0.5, max_delay_s=10.0)

MAX_BATCH_BYTES = 1 << 20
SLOW_ACK_REPORT_EVERY_S = 30.0


def worth_waiting_for(error: BaseException) -> bool:
    """Whether the broker may yet accept: retriable Kafka errors, timeouts, a lost connection, or
    a lost producer identity (renewed). Anything else (authorization, a record too large, a bad
    configuration) fails the same way again."""
    if isinstance(error, (TimeoutError, OSError, KafkaTimeoutError, *PRODUCER_IDENTITY_LOST)):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


@dataclass(frozen=True, slots=True)
class KafkaWait:
    """The broker did not acknowledge (or acknowledged late): `wait_s` waited or to wait."""

    topic: str
    attempt: int
    wait_s: float
    reason: str


class KafkaOutput:
    """One idempotent producer for a whole run (every partner and topic)."""

    def __init__(
        self,
        connection: KafkaConnection | str,
        *,
        client_id: str = "ocpi-puller",
        partitions: int = 6,
        replication_factor: int = 1,
        deadline_s: float = 300.0,
        connect_timeout_s: float = 30.0,
        request_timeout_ms: int = 30_000,
        on_wait: Callable[[KafkaWait], None] | None = None,
        producer_options: dict[str, Any] | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.connection = as_connection(connection)
        # A `kafka.produce` span per send, from the call to the last acknowledgement.
        self.tracer: trace.Tracer = tracer or trace.NoOpTracer()
        # Whether the broker kept what it acknowledged before each outage (see kept.py).
        self._kept = KeptWrites()
        self._client_id = client_id
        self._partitions = partitions
        self._replication = replication_factor
        self._deadline_s = deadline_s
        self._produce = PRODUCE.within(deadline_s)
        self._connect_timeout_s = connect_timeout_s
        self._on_wait = on_wait
        self._rng = random.Random()
        self._partition_counts: dict[str, int] = {}
        self._producer_options: dict[str, Any] = {
            **self.connection.client_options(),
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "max_batch_size": MAX_BATCH_BYTES,
            "max_request_size": MAX_BATCH_BYTES + 64 * 1024,
            "request_timeout_ms": request_timeout_ms,
            "compression_type": "lz4",
            **(producer_options or {}),
        }
        warn_if_unchecked()  # an aiokafka whose internals were not checked: one line
        use_fast_lz4()  # lz4 batches at LZ4's fast level (see compression.py)
        # An acknowledgement slower than this is reported (and waited for, to the deadline).
        self.ack_timeout_s = request_timeout_ms / 1000 + 1.0
        # aiokafka gives up a request after its request timeout and sends it again on a new
        # connection: for our producer, that is the whole deadline (see the module's doc).
        patient_timeout_ms = max(request_timeout_ms, int(deadline_s * 1000))
        self._waiting: set[asyncio.Future[Marks]] = set()
        self._started = False
        self.producers = RenewableProducer(
            self.producer_options(request_timeout_ms=patient_timeout_ms),
            on_lost=self._connection_lost,
            deadline_s=deadline_s,
        )
        self._outboxes: dict[tuple[str, int], PartitionOutbox] = {}
        self._last_slow_report = 0.0
        self._last_slow_wait = 0.0
        self._slow_waits = 0
        # Start times (monotonic) of broker outages: writes acknowledged shortly before one may
        # be lost by a broker that restarts (see Pull's replay).
        self.outages: list[float] = []
        self._healthy = True
        # Every batch acknowledged, by offset: whether Kafka still holds them is checked
        # against it (durability.py).
        self.acked = AckedOffsets()
        self.waits = 0

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers (for messages)."""
        return self.connection.bootstrap_servers

    def producer_options(self, **overrides: Any) -> dict[str, Any]:
        """The options this output's producers are built with (a copy), with `overrides`."""
        return {**self._producer_options, **overrides}

    @property
    def producer(self) -> AIOKafkaProducer:
        """The producer in use (it is replaced when the broker forgets it)."""
        return self.producers.producer

    async def start(self) -> None:
        """Connect, retrying for at most the connect timeout (the broker may still be starting);
        a broker never reached is a KafkaUnavailableError, and nothing is left open."""

        async def connect() -> None:
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    await self.producers.start()
            except (KafkaError, OSError) as error:
                # A refused login or certificate fails the same way again: say so now.
                found = await diagnose(self.connection)
                if found is not None:
                    raise found from None
                raise error

        await self._until_deadline("connect", connect, deadline_s=self._connect_timeout_s)
        self._started = True

    def _connection_lost(self) -> None:
        # A broker that restarts may lose what it acknowledged just before (see Pull's replay).
        if self._healthy and self._started:
            self._report(KafkaWait("connection", 0, 0.0, "connection to the broker lost"))
        self._outage_began(time.monotonic())

    async def stop(self) -> None:
        """Flush what is buffered and disconnect."""
        if self._started:
            self._started = False
            for waiting in list(self._waiting):
                waiting.cancel()
            # A broker gone for longer than the deadline gets no more time to take what is left.
            left = self._outage_over_s(self._deadline_s)
            gone = left is not None and left <= 0
            outboxes = list(self._outboxes.values())
            await asyncio.gather(
                *(o.close(timeout_s=0.1 if gone else 30.0) for o in outboxes),
                return_exceptions=True,
            )
            await self.producers.stop(flush_timeout_s=0.1 if gone else self.ack_timeout_s)

    def _report(self, wait: KafkaWait) -> None:
        self.waits += 1
        if self._on_wait is not None:
            self._on_wait(wait)

    def _outage_began(self, at: float) -> None:
        if self._healthy:
            self._healthy = False
            self.outages.append(at)
            self._kept.outage(at, self.producers.current()[1] if self._started else 0)

    def may_have_lost(self, outages: list[float], replay_s: float) -> list[float]:
        """Those of `outages` after which the broker has not shown, through this producer's
        sequence numbers, that it kept what it acknowledged in the `replay_s` before them
        (kept.py): only these call for a re-read. Against a correct broker, none."""
        return self._kept.unproven(outages, replay_s)

    def _acknowledged(self) -> None:
        self._healthy = True

    def _outage_over_s(self, limit_s: float) -> float | None:
        """Seconds until the current outage has lasted `limit_s` (negative: it has), or None
        when there is none: every wait during one outage ends by the same deadline, however
        many waits there are and whenever they began."""
        if self._healthy or not self.outages:
            return None
        return self.outages[-1] + limit_s - time.monotonic()

    def _slow_ack(self, topic: str, waited_s: float) -> None:
        # A busy broker is not a lost one: only a lost connection or a failed produce counts as
        # an outage (and makes the pull re-read); a slow acknowledgement is only noted.
        now = time.monotonic()
        if now - self._last_slow_report >= SLOW_ACK_REPORT_EVERY_S:
            self._last_slow_report = now
            log.info("Kafka acknowledged %s after %.1f s (a busy broker)", topic, waited_s)

    async def _until_deadline(
        self,
        what: str,
        action: Callable[[], Any],
        *,
        report: bool = True,
        deadline_s: float | None = None,
    ) -> Any:
        limit_s = self._deadline_s if deadline_s is None else deadline_s
        policy = self._produce if deadline_s is None else self._produce.within(deadline_s)
        deadline = time.monotonic() + limit_s
        if deadline_s is None and (left := self._outage_over_s(limit_s)) is not None:
            deadline = time.monotonic() + max(0.0, left)  # the outage began before this wait
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await action()
                self._acknowledged()
                return result
            except (TimeoutError, KafkaError, OSError) as error:
                if not worth_waiting_for(error):
                    refused = refusal(error, self.connection, permission_for(what))
                    if refused is not None:
                        raise refused from None
                    raise KafkaUnavailableError(
                        f"Kafka at {self.bootstrap} refused to {what}: {_describe(error)}"
                    ) from None
                self._outage_began(time.monotonic())
                if deadline_s is None and (left := self._outage_over_s(limit_s)) is not None:
                    deadline = min(deadline, time.monotonic() + left)
                if isinstance(error, PRODUCER_IDENTITY_LOST) and self._started:
                    self.producers.identity_lost(error, self.producers.current()[1])
                    await self.producers.settled()
                reason = await self._reason(error)
                wait = policy.next_wait(attempt, self._rng, now=time.monotonic(), deadline=deadline)
                if wait is None:
                    raise KafkaUnavailableError(
                        f"Kafka at {self.bootstrap} unavailable for {limit_s:.0f} s "
                        f"({what}: {reason})"
                    ) from None
                if report:
                    self._report(KafkaWait(what, attempt, wait, reason))
                if attempt == 1 or (report and deadline_s is None):
                    log.warning(
                        "Kafka %s failed (%s); retrying for up to %.0f s", what, reason, limit_s
                    )
                else:
                    log.debug("Kafka %s failed (%s); retrying in %.1f s", what, reason, wait)
                await asyncio.sleep(wait)

    async def _reason(self, error: BaseException) -> str:
        """What went wrong, as the operator should read it: a broker that cannot be reached says
        why (aiokafka does not), anything else its error."""
        if isinstance(error, (KafkaConnectionError, OSError)):
            found = await asyncio.to_thread(unreachable, self.bootstrap)
            if found is not None:
                return found
        return _describe(error)

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet (partitions/replication as configured)."""

        async def create() -> None:
            await create_missing_topics(
                self.connection,
                topics,
                partitions=self._partitions,
                replication_factor=self._replication,
                client_id=self._client_id,
            )

        await self._until_deadline("create topics", create)
        # Least privilege: every permission the run needs, checked now rather than mid-pull.
        await check_permissions(self.producer.client, self.connection, topics)

    async def partition_count(self, topic: str) -> int:
        """Partitions of `topic` (cached; metadata is fetched once)."""
        count = self._partition_counts.get(topic)
        if count is None:
            partitions = await self._until_deadline(
                f"metadata of {topic}", lambda: self.producer.partitions_for(topic)
            )
            count = len(partitions)
            self._partition_counts[topic] = count
        return count

    async def send(self, topic: str, messages: Sequence[OutMessage]) -> asyncio.Future[Marks]:
        """Queue messages; the returned future resolves when Kafka acknowledged all of them,
        to where they ended on each partition.

        Waits (backpressure) while a partition already holds too many full batches.
        """
        span = produce_span(self.tracer, topic, len(messages))
        try:
            partitions = await self.partition_count(topic)
        except BaseException as error:
            end_span(span, error)
            raise
        waits: set[asyncio.Future[Acked]] = set()
        hashed = [m.key if m.partition_key is None else m.partition_key for m in messages]
        by_partition = _by_partition(messages, partitions_for(hashed, partitions))
        for partition, group in by_partition.items():  # each partition's messages in order
            outbox = self._outbox(topic, partition)
            done = 0
            while done < len(group):
                if outbox.full:
                    await outbox.wait_for_room()
                done = outbox.extend(group, done, waits)
        acked = asyncio.ensure_future(_all_acked(list(waits)))
        acked.add_done_callback(lambda done: end_span(span, failure_of(done)))
        self._waiting.add(acked)
        acked.add_done_callback(self._waiting.discard)
        acked.add_done_callback(_retrieve)  # a timed-out wait is abandoned, not forgotten
        return acked

    async def wait_acked(
        self, acks: Sequence[asyncio.Future[Marks]], *, report: bool = True
    ) -> Marks:
        """Wait for acknowledgements, however slow, for at most the deadline (counted from when
        the broker went away, if it did): a slow broker is waited for, never sent the records
        again. A failed delivery raises its error; nothing acknowledged by the deadline raises
        KafkaUnavailableError. Where the acknowledged messages ended, per partition.

        The futures are not cancelled on timeout: a batch may hold other pages' messages too.
        """
        marks: Marks = {}
        pending = set(acks)
        started = time.monotonic()
        while pending:
            timeout = self.ack_timeout_s
            if (left := self._outage_over_s(self._deadline_s)) is not None:
                timeout = min(timeout, max(0.001, left))  # no wait outlives the outage's
            done, pending = await asyncio.wait(pending, timeout=timeout)
            for future in done:
                for partition, written in future.result().items():
                    known = marks.get(partition)
                    marks[partition] = written if known is None else known.merged(written)
            if not pending:
                return marks
            waited = time.monotonic() - started
            left = self._outage_over_s(self._deadline_s)
            if waited >= self._deadline_s or (left is not None and left <= 0):
                raise KafkaUnavailableError(
                    f"Kafka at {self.bootstrap} acknowledged nothing for {waited:.0f} s"
                )
            if report:
                self._slow_broker(waited)
        return marks

    async def lost_writes(self, topics: Sequence[str]) -> Losses:
        """Writes to `topics` Kafka acknowledged but no longer holds (offsets reused since, or
        an end offset not past them): every loss shown so far, whichever pull wrote there."""
        asked = {p: high for p, high in self.acked.highest.items() if p[0] in topics}
        if asked:
            asked_at = time.monotonic()
            ends = await self._until_deadline(
                "read end offsets", lambda: end_offsets(self.connection, list(asked))
            )
            self.acked.check_ends(ends, highest_asked=asked, asked_at=asked_at)
        return self.acked.lost_on(topics)

    def has_lost(self, topics: Collection[str]) -> bool:
        """Whether Kafka has shown, so far, that it lost writes to `topics` it acknowledged."""
        return self.acked.any_lost_on(topics)

    def _batch_acked(self, topic: str, partition: int, base: int, records: int, at: float) -> None:
        self.acked.acknowledged((topic, partition), base, records, at)

    def _slow_broker(self, waited_s: float) -> None:
        """A wait past the request timeout: reported at most once per request timeout for the
        whole output (every page waits at once; each report is an event to deliver too)."""
        now = time.monotonic()
        if now - self._last_slow_wait < self.ack_timeout_s:
            return
        self._last_slow_wait = now
        self._slow_waits += 1
        reason = (
            f"no acknowledgement for {waited_s:.0f} s (a slow broker): waiting up to "
            f"{self._deadline_s:.0f} s, nothing is sent again"
        )
        self._report(KafkaWait("produce", self._slow_waits, self.ack_timeout_s, reason))
        log.warning("Kafka: %s", reason)

    def _outbox(self, topic: str, partition: int) -> PartitionOutbox:
        outbox = self._outboxes.get((topic, partition))
        if outbox is None:
            outbox = PartitionOutbox(
                self.producers,
                topic,
                partition,
                on_slow_ack=self._slow_ack,
                on_failure=lambda: self._outage_began(time.monotonic()),
                on_acked=self._batch_acked,
                on_generation_acked=lambda generation: self._kept.acknowledged(
                    (topic, partition), generation, time.monotonic()
                ),
            )
            self._outboxes[(topic, partition)] = outbox
        return outbox

    async def send_and_wait(
        self, topic: str, messages: Sequence[OutMessage], *, report: bool = True
    ) -> Marks:
        """Produce and wait for every acknowledgement, retrying the lot until the deadline.

        `report=False` keeps the retries quiet: progress events must not report waits of their
        own delivery (each report being another event to deliver).
        """
        if not messages:
            return {}

        async def attempt() -> Marks:
            return await self.wait_acked([await self.send(topic, messages)], report=report)

        marks: Marks = await self._until_deadline(f"produce to {topic}", attempt, report=report)
        return marks


def _by_partition(
    messages: Sequence[OutMessage], partitions: list[int]
) -> dict[int, list[OutMessage]]:
    """The messages of each partition, in their order."""
    if not partitions:
        return {}
    chosen = np.asarray(partitions)
    order = np.argsort(chosen, kind="stable")
    ordered = chosen[order]
    cuts = np.flatnonzero(np.diff(ordered)) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), len(order)]
    at = order.tolist()
    return {
        int(ordered[start]): [messages[i] for i in at[start:end]]
        for start, end in zip(starts, ends, strict=True)
    }


async def _all_acked(futures: list[asyncio.Future[Acked]]) -> Marks:
    marks: Marks = {}
    if not futures:
        return marks
    # Wait for all (so no failure goes unretrieved), then raise the first failure.
    results = await asyncio.gather(*futures, return_exceptions=True)
    for result in results:
        if isinstance(result, asyncio.CancelledError):
            raise DeliveryAbandoned("acknowledgement abandoned")  # a failed produce, to retry
        if isinstance(result, BaseException):
            raise result
        partition = (result.topic, result.partition)
        written = Written(result.last_offset, result.at)
        known = marks.get(partition)
        marks[partition] = written if known is None else known.merged(written)
    return marks


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(error: BaseException) -> str:
    name, text = type(error).__name__, str(error)
    return (text if text.startswith(name) else f"{name}: {text}")[:200]
