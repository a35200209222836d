"""The aiokafka shell: connection, topics, batched produce, acknowledgements, broker outages.

Messages go to per-partition outboxes (see outbox.py) on the partition Kafka's default
partitioner would choose. A page counts as produced only when every batch holding its messages is
acknowledged (acks=all, idempotent). When the broker is unreachable, a produce is retried with
backoff until a deadline; when the broker has lost this producer's identity (a restarted broker
answers OutOfOrderSequenceNumber or UnknownProducerId), the producer is replaced by a new one and
the unacknowledged messages are produced again (duplicates are harmless: messages are keyed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from producer.backoff import Backoff
from producer.errors import KafkaUnavailableError
from producer.kafka.admin import create_missing_topics
from producer.kafka.compression import use_fast_lz4
from producer.kafka.connection import KafkaConnection, as_connection
from producer.kafka.lifecycle import close_producer, watch_connections
from producer.kafka.outbox import DeliveryAbandoned, PartitionOutbox
from producer.kafka.partitioning import partitions_for
from producer.kafka.records import OutMessage, TopicSpec

log = logging.getLogger("ocpi_puller")

MAX_BATCH_BYTES = 1 << 20
KAFKA_BACKOFF = Backoff(base_s=0.5, cap_s=10.0)
SLOW_ACK_REPORT_EVERY_S = 30.0
# The broker no longer knows this producer (e.g. it restarted without its producer state): only a
# new producer, with a new id, can produce again.
PRODUCER_IDENTITY_LOST = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


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
    ) -> None:
        self.connection = as_connection(connection)
        self._client_id = client_id
        self._partitions = partitions
        self._replication = replication_factor
        self._deadline_s = deadline_s
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
        use_fast_lz4()  # lz4 batches at LZ4's fast level (see compression.py)
        self._producer: AIOKafkaProducer | None = None  # built by start()
        # aiokafka never expires a batch while the broker is unreachable: every wait for an
        # acknowledgement is bounded by this, then retried (until the deadline).
        self.ack_timeout_s = request_timeout_ms / 1000 + 1.0
        self._waiting: set[asyncio.Future[None]] = set()
        self._started = False
        self._renewing: asyncio.Lock | None = None
        self._outboxes: dict[tuple[str, int], PartitionOutbox] = {}
        self._last_slow_report = 0.0
        # Start times (monotonic) of broker outages: writes acknowledged shortly before one may
        # be lost by a broker that restarts (see Pull's replay).
        self.outages: list[float] = []
        self._healthy = True
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
        assert self._producer is not None, "KafkaOutput.start() first"
        return self._producer

    async def start(self) -> None:
        """Connect, retrying for at most the connect timeout (the broker may still be starting);
        a broker never reached is a KafkaUnavailableError, and nothing is left open."""

        async def connect() -> None:
            self._producer = await self._started_producer()

        await self._until_deadline("connect", connect, deadline_s=self._connect_timeout_s)
        self._started = True

    async def _started_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._producer_options)
        watch_connections(producer, self._connection_lost)
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(KafkaError, OSError):
                await producer.stop()
            raise
        return producer

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
            outboxes = list(self._outboxes.values())
            await asyncio.gather(*(o.close() for o in outboxes), return_exceptions=True)
            await close_producer(self.producer, flush_timeout_s=self.ack_timeout_s)

    def _report(self, wait: KafkaWait) -> None:
        self.waits += 1
        if self._on_wait is not None:
            self._on_wait(wait)

    def _outage_began(self, at: float) -> None:
        if self._healthy:
            self._healthy = False
            self.outages.append(at)

    def _acknowledged(self) -> None:
        self._healthy = True

    def _slow_ack(self, topic: str, waited_s: float) -> None:
        # A busy broker is not a lost one: only a lost connection or a failed produce counts as
        # an outage (and makes the pull re-read); a slow acknowledgement is only noted.
        now = time.monotonic()
        if now - self._last_slow_report >= SLOW_ACK_REPORT_EVERY_S:
            self._last_slow_report = now
            log.info("Kafka acknowledged %s after %.1f s (a busy broker)", topic, waited_s)

    async def _renew_producer(self, error: BaseException) -> None:
        """Replace a producer the broker no longer knows; its pending messages fail and are
        produced again by their senders."""
        if self._renewing is None:
            self._renewing = asyncio.Lock()
        async with self._renewing:
            if not isinstance(error, PRODUCER_IDENTITY_LOST) or not self._started:
                return
            # The broker is still away when this fails: the old one is kept for now.
            fresh = await self._started_producer()
            old, self._producer = self.producer, fresh
            for outbox in self._outboxes.values():
                outbox.fail_pending(error)
            log.warning("Kafka lost this producer's identity (%s): using a new producer", error)
            await close_producer(old, flush_timeout_s=1.0)  # broken: do not wait for it

    async def _until_deadline(
        self,
        what: str,
        action: Callable[[], Any],
        *,
        report: bool = True,
        deadline_s: float | None = None,
    ) -> Any:
        limit_s = self._deadline_s if deadline_s is None else deadline_s
        deadline = time.monotonic() + limit_s
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await action()
                self._acknowledged()
                return result
            except (TimeoutError, KafkaError, OSError) as error:
                if not worth_waiting_for(error):
                    raise KafkaUnavailableError(
                        f"Kafka at {self.bootstrap} refused to {what}: {_describe(error)}"
                    ) from None
                self._outage_began(time.monotonic())
                if isinstance(error, PRODUCER_IDENTITY_LOST):
                    with contextlib.suppress(KafkaError, OSError, TimeoutError):
                        await self._renew_producer(error)
                reason = _describe(error)
                wait = KAFKA_BACKOFF.delay(attempt, self._rng)
                if time.monotonic() + wait > deadline:
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

    async def send(self, topic: str, messages: Sequence[OutMessage]) -> asyncio.Future[None]:
        """Queue messages; the returned future resolves when Kafka acknowledged all of them.

        Waits (backpressure) while a partition already holds too many full batches.
        """
        partitions = await self.partition_count(topic)
        waits: set[asyncio.Future[None]] = set()
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
        self._waiting.add(acked)
        acked.add_done_callback(self._waiting.discard)
        acked.add_done_callback(_retrieve)  # a timed-out wait is abandoned, not forgotten
        return acked

    async def wait_acked(self, acks: Sequence[asyncio.Future[None]]) -> None:
        """Wait for acknowledgements, at most `ack_timeout_s`; a timeout is a KafkaTimeoutError.

        The futures are not cancelled on timeout: a batch may hold other pages' messages too.
        """
        if not acks:
            return
        done, pending = await asyncio.wait(acks, timeout=self.ack_timeout_s)
        if pending:
            self._outage_began(time.monotonic() - self.ack_timeout_s)
            raise KafkaTimeoutError(f"no acknowledgement within {self.ack_timeout_s:.0f} s")
        for future in done:
            future.result()

    def _outbox(self, topic: str, partition: int) -> PartitionOutbox:
        outbox = self._outboxes.get((topic, partition))
        if outbox is None:
            outbox = PartitionOutbox(
                lambda: self.producer,
                topic,
                partition,
                on_slow_ack=self._slow_ack,
                on_failure=lambda: self._outage_began(time.monotonic()),
            )
            self._outboxes[(topic, partition)] = outbox
        return outbox

    async def send_and_wait(
        self, topic: str, messages: Sequence[OutMessage], *, report: bool = True
    ) -> None:
        """Produce and wait for every acknowledgement, retrying the lot until the deadline.

        `report=False` keeps the retries quiet: progress events must not report waits of their
        own delivery (each report being another event to deliver).
        """
        if not messages:
            return

        async def attempt() -> None:
            await self.wait_acked([await self.send(topic, messages)])

        await self._until_deadline(f"produce to {topic}", attempt, report=report)


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


async def _all_acked(futures: list[asyncio.Future[Any]]) -> None:
    if not futures:
        return
    # Wait for all (so no failure goes unretrieved), then raise the first failure.
    results = await asyncio.gather(*futures, return_exceptions=True)
    for result in results:
        if isinstance(result, asyncio.CancelledError):
            raise DeliveryAbandoned("acknowledgement abandoned")  # a failed produce, to retry
        if isinstance(result, BaseException):
            raise result


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(error: BaseException) -> str:
    name, text = type(error).__name__, str(error)
    return (text if text.startswith(name) else f"{name}: {text}")[:200]
