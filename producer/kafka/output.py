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
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
)
from opentelemetry import trace

from producer.backoff import Backoff
from producer.errors import KafkaUnavailableError
from producer.kafka.admin import create_missing_topics
from producer.kafka.compression import use_fast_lz4
from producer.kafka.connection import KafkaConnection, as_connection
from producer.kafka.diagnosis import diagnose, permission_for, refusal
from producer.kafka.failures import (
    PRODUCER_IDENTITY_LOST,
    KafkaWait,
    describe_failure,
    worth_waiting_for,
)
from producer.kafka.kept import KeptWrites
from producer.kafka.lifecycle import close_producer, watch_connections
from producer.kafka.outbox import DeliveryAbandoned, PartitionOutbox
from producer.kafka.partitioning import partitions_for
from producer.kafka.permissions import check_permissions
from producer.kafka.records import OutMessage, TopicSpec
from producer.kafka.spans import end_span, failure_of, produce_span

# KafkaWait and worth_waiting_for live in failures.py; callers know them from here too.
__all__ = ["PRODUCER_IDENTITY_LOST", "KafkaOutput", "KafkaWait", "worth_waiting_for"]

log = logging.getLogger("ocpi_puller")

MAX_BATCH_BYTES = 1 << 20
KAFKA_BACKOFF = Backoff(base_s=0.5, cap_s=10.0)
SLOW_ACK_REPORT_EVERY_S = 30.0


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
        # Which producer an attempt used: a failure of an older one's is no reason to renew.
        self._generation = 0
        self._generations: dict[int, int] = {}  # id(producer) -> its generation
        # Whether the broker kept what it acknowledged before each outage (see kept.py).
        self._kept = KeptWrites()
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
            try:
                self._producer = await self._started_producer()
            except (KafkaError, OSError) as error:
                # A refused login or certificate fails the same way again: say so now.
                found = await diagnose(self.connection)
                if found is not None:
                    raise found from None
                raise error

        await self._until_deadline("connect", connect, deadline_s=self._connect_timeout_s)
        self._started = True

    async def _started_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._producer_options)
        # The generation it will have once in use (start() and renewals bump it after this).
        self._generations[id(producer)] = self._generation + (1 if self._started else 0)
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
            self._kept.outage(at, self._generation)

    def _batch_acknowledged(self, topic: str, partition: int, producer: AIOKafkaProducer) -> None:
        generation = self._generations.get(id(producer), -1)
        self._kept.acknowledged((topic, partition), generation, time.monotonic())

    def may_have_lost(self, outages: list[float], replay_s: float) -> list[float]:
        """Those of `outages` after which the broker has not shown, through this producer's
        sequence numbers, that it kept what it acknowledged in the `replay_s` before them
        (kept.py): only these call for a re-read. Against a correct broker, none."""
        return self._kept.unproven(outages, replay_s)

    def _acknowledged(self) -> None:
        self._healthy = True

    def _slow_ack(self, topic: str, waited_s: float) -> None:
        # A busy broker is not a lost one: only a lost connection or a failed produce counts as
        # an outage (and makes the pull re-read); a slow acknowledgement is only noted.
        now = time.monotonic()
        if now - self._last_slow_report >= SLOW_ACK_REPORT_EVERY_S:
            self._last_slow_report = now
            log.info("Kafka acknowledged %s after %.1f s (a busy broker)", topic, waited_s)

    async def _renew_producer(self, error: BaseException, generation: int) -> None:
        """Replace a producer the broker no longer knows; its pending messages fail and are
        produced again by their senders.

        Only once per producer: an attempt that used a producer already replaced (`generation`)
        renews nothing, or every renewal would fail the others' pending messages with the same
        error and make them renew again, without end (seen against Apache Kafka)."""
        if self._renewing is None:
            self._renewing = asyncio.Lock()
        async with self._renewing:
            if not isinstance(error, PRODUCER_IDENTITY_LOST) or not self._started:
                return
            if generation != self._generation:
                return
            # The broker is still away when this fails: the old one is kept for now.
            fresh = await self._started_producer()
            old, self._producer = self.producer, fresh
            self._generation += 1
            abandoned = DeliveryAbandoned(f"producer replaced ({type(error).__name__})")
            for outbox in self._outboxes.values():
                outbox.fail_pending(abandoned)
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
            generation = self._generation
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
                        f"Kafka at {self.bootstrap} refused to {what}: {describe_failure(error)}"
                    ) from None
                self._outage_began(time.monotonic())
                if isinstance(error, PRODUCER_IDENTITY_LOST):
                    with contextlib.suppress(KafkaError, OSError, TimeoutError):
                        await self._renew_producer(error, generation)
                reason = describe_failure(error)
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

    async def send(self, topic: str, messages: Sequence[OutMessage]) -> asyncio.Future[None]:
        """Queue messages; the returned future resolves when Kafka acknowledged all of them.

        Waits (backpressure) while a partition already holds too many full batches.
        """
        span = produce_span(self.tracer, topic, len(messages))
        try:
            partitions = await self.partition_count(topic)
        except BaseException as error:
            end_span(span, error)
            raise
        waits: set[asyncio.Future[None]] = set()
        hashed = [m.key if m.partition_key is None else m.partition_key for m in messages]
        for message, partition in zip(messages, partitions_for(hashed, partitions), strict=True):
            outbox = self._outbox(topic, partition)
            if outbox.full:
                await outbox.wait_for_room()
            waits.add(outbox.append(message))
        acked = asyncio.ensure_future(_all_acked(list(waits)))
        acked.add_done_callback(lambda done: end_span(span, failure_of(done)))
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
                on_ack=lambda producer: self._batch_acknowledged(topic, partition, producer),
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
