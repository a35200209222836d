"""The transactional producer of one pull's shard (exactly-once delivery).

`transactional_id` names what the producer owns, never the process: `<prefix>.<partner>.<module>.
<pull-id>.<shard-index>`. Starting it (InitProducerId) fences every earlier producer with that id
and ends the transaction it left open, so a second process with the same pull and shard fences
the first. One `commit()` is one transaction holding one commit unit: begin, every record through
aiokafka's batch API on the partition Kafka's default partitioner picks, commit. A transaction is
opened only with the whole unit in hand, never across a partner request, so slow pages and
Retry-After never count toward `transaction.timeout.ms`.

A commit that fails for any reason but fencing leaves the unit's fate unknown (a commit cut short
may still land): the producer is replaced by a new one with the same id, whose InitProducerId
settles the old transaction either way, and the caller finds out from a committed read.

A transaction can also stay open in a partition after its coordinator ended it: a coordinator
that finds no leader for a partition while it writes the markers (the partition's only replica
shutting down) takes the partition for deleted and skips it. Read_committed consumers stop there
for good, and so would this pull's own committed reads. So each producer, once started, first
commits an empty transaction over every partition the pull writes (`settle`): its markers, of a
newer epoch of the same producer id, end what an earlier epoch left open there, as committed. The
committed reads come after it (a resume's, a commit of unknown outcome's), so they count what it
made visible: nothing is sent twice. If it does not commit, the next producer's start aborts it,
which ends those records aborted, a unit Kafka confirmed among them: the committer reads the
recent units back after every outage for that reason (committer.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    IllegalOperation,
    InvalidTransactionTimeout,
    KafkaConnectionError,
    KafkaError,
    ProducerFenced,
)
from opentelemetry import trace

from producer.errors import ConfigError, FencedError, KafkaUnavailableError
from producer.kafka.aiokafka_internals import (
    add_to_transaction,
    fatal_error,
    halt_producer,
    sender_task,
    transaction_failed,
    watch_connections,
)
from producer.kafka.diagnosis import refusal
from producer.kafka.lifecycle import close_producer
from producer.kafka.output import KafkaOutput, worth_waiting_for
from producer.kafka.partitioning import partitions_for
from producer.kafka.records import OutMessage
from producer.kafka.units import Routed

log = logging.getLogger("ocpi_puller")

# Kafka's transaction.timeout.ms asked for: a unit's time (--transaction-ms) and a minute more
# to send and commit it. A broker whose transaction.max.timeout.ms is lower refuses it at start.
TRANSACTION_SLACK_MS = 60_000


def transaction_timeout_ms(transaction_ms: int) -> int:
    """The transaction timeout a pull with `--transaction-ms` asks Kafka for."""
    return transaction_ms + TRANSACTION_SLACK_MS


def transactional_id(prefix: str, partner: str, module: str, pull_id: str, shard: int) -> str:
    """The id of a pull's shard's transactional producer."""
    return f"{prefix}.{partner}.{module}.{pull_id}.{shard}"


@dataclass(frozen=True, slots=True)
class Written:
    """Where one batch of a committed transaction went: `records` records from `base_offset`."""

    topic: str
    partition: int
    base_offset: int
    records: int


class CommitUnsure(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """A transaction failed short of a confirmed commit: it may or may not have committed."""

    retriable = True


class Transactor:
    """One transactional producer; `commit()` puts a unit's records in one transaction."""

    def __init__(
        self,
        kafka: KafkaOutput,
        transactional_id: str,
        *,
        connect_timeout_s: float = 30.0,
        transaction_ms: int = 2000,
        topics: Sequence[str] = (),
    ) -> None:
        self._kafka = kafka
        # The topics whose partitions each new producer settles: given, and every one written.
        self._topics = set(topics)
        self.transactional_id = transactional_id
        self._connect_timeout_s = connect_timeout_s
        self._transaction_ms = transaction_ms
        self._wait_s = kafka.ack_timeout_s
        self._producer: AIOKafkaProducer | None = None
        # When connections to the broker broke: a restarting broker may lose what it had just
        # acknowledged, commits included.
        self.outages: list[float] = []

    async def start(self) -> None:
        """Start the producer: fences every earlier producer of this id (a KafkaUnavailableError
        when the broker cannot be reached within the connect timeout)."""
        self._producer = await self._settled()

    @property
    def halted(self) -> bool:
        """Whether the producer can no longer commit (halted after a lost connection, fenced,
        or failed): `renew()` it first."""
        producer = self._producer
        return producer is None or fatal_error(producer) is not None or transaction_failed(producer)

    async def _started(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **self._kafka.producer_options(
                transactional_id=self.transactional_id,
                transaction_timeout_ms=transaction_timeout_ms(self._transaction_ms),
                client_id=f"ocpi-puller-{self.transactional_id}"[:200],
            )
        )
        watch_connections(producer, lambda: self._connection_lost(producer))
        try:
            # aiokafka retries InitProducerId with no deadline (aio-libs/aiokafka#1091).
            async with asyncio.timeout(self._connect_timeout_s):
                await producer.start()
        except BaseException as error:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(producer.stop(), 5)
            self._refused(error)
            if isinstance(error, (KafkaError, OSError, TimeoutError)):
                raise KafkaUnavailableError(
                    f"Kafka at {self._kafka.bootstrap} did not start transactional producer "
                    f"{self.transactional_id} within {self._connect_timeout_s:.0f} s "
                    f"({type(error).__name__})"
                ) from None
            raise
        return producer

    def _refused(self, error: BaseException) -> None:
        """Raise what no retry cures: a missing ACL, a timeout the broker does not allow."""
        connection = self._kafka.connection
        refused = refusal(error, connection, f"WRITE on TransactionalId {self.transactional_id}")
        if refused is not None:
            raise refused from None
        if isinstance(error, InvalidTransactionTimeout):
            asked = transaction_timeout_ms(self._transaction_ms)
            raise ConfigError(
                f"Kafka at {connection.bootstrap_servers} refuses transactions of {asked} ms "
                f"(--transaction-ms {self._transaction_ms} + {TRANSACTION_SLACK_MS // 1000} s), "
                "more than its transaction.max.timeout.ms: lower --transaction-ms or raise "
                "transaction.max.timeout.ms"
            ) from None

    def _connection_lost(self, producer: AIOKafkaProducer) -> None:
        self.outages.append(time.monotonic())
        # Never write again with this producer id (see halt_producer): the commit under way
        # fails, and the unit's fate is settled by a new producer and a committed read.
        halt_producer(producer, KafkaConnectionError("connection to the broker lost"))

    async def stop(self) -> None:
        """Close the producer (a transaction left open is ended by the next producer of the id,
        or by Kafka's transaction timeout)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await _close(producer)

    async def renew(self) -> None:
        """Replace the producer by a new one with the same id: whatever transaction the old one
        left is settled (committed if its commit had reached the coordinator, else aborted)."""
        if self._producer is not None:
            await self.stop()
        self._producer = await self._settled()

    async def _settled(self) -> AIOKafkaProducer:
        """A started producer that has settled the topics' partitions. If Kafka does not commit
        that transaction (noida-db refuses one that writes no record to a partition whose last
        transaction was aborted), a second producer, whose start aborts it."""
        producer = await self._started()
        try:
            await self._settle(producer)
            return producer
        except KafkaUnavailableError as error:
            log.warning("%s: going on without it", error)
        await _close(producer)
        return await self._started()

    async def _settle(self, producer: AIOKafkaProducer) -> None:
        """Commit an empty transaction over every partition of the topics: it ends whatever
        transaction of this producer id a broker left open there (see the module's text).

        Raises FencedError when fenced, KafkaUnavailableError when it does not commit."""
        partitions = [
            TopicPartition(topic, partition)
            for topic in sorted(self._topics)
            for partition in range(await self._kafka.partition_count(topic))
        ]
        if not partitions:
            return
        with self._kafka.tracer.start_as_current_span(
            "kafka.transaction.settle",
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "partitions": len(partitions)},
        ):
            try:
                async with asyncio.timeout(self._wait_s):
                    await producer.begin_transaction()
                    add_to_transaction(producer, partitions)
                    await producer.commit_transaction()
            except ProducerFenced:
                raise self.fenced() from None
            except (KafkaError, OSError, TimeoutError, AssertionError, IllegalOperation) as error:
                if isinstance(fatal_error(producer), ProducerFenced):
                    raise self.fenced() from None
                raise KafkaUnavailableError(
                    f"Kafka at {self._kafka.bootstrap} did not commit the transaction that ends "
                    f"what an earlier producer of {self.transactional_id} may have left open "
                    f"({type(error).__name__}: {fatal_error(producer) or error})"
                ) from None

    def fenced(self) -> FencedError:
        return FencedError(
            f"another process took over transactional id {self.transactional_id} (the same "
            "--pull-id and shard), or a transaction outlived transaction.timeout.ms: this "
            "process stops; nothing it had not committed is kept"
        )

    async def commit(self, records: Sequence[Routed]) -> list[Written]:
        """Commit `records` in one transaction; where each of its batches went.

        Raises FencedError when fenced, CommitUnsure for anything else short of a confirmed
        commit (call `renew()` before trying again), KafkaUnavailableError when Kafka refuses
        for good (authorization, a record too large).
        """
        producer = self._producer
        if producer is None:
            raise CommitUnsure("no producer (renew it)")
        with self._kafka.tracer.start_as_current_span(
            "kafka.transaction",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.name": "send",
                "messaging.batch.message_count": len(records),
            },
        ):
            return await self._commit(producer, records)

    async def _commit(self, producer: AIOKafkaProducer, records: Sequence[Routed]) -> list[Written]:
        try:
            self._check(producer)
            async with asyncio.timeout(self._wait_s):
                await producer.begin_transaction()
            deliveries = await self._send(producer, records)
            async with asyncio.timeout(self._wait_s):
                written = await asyncio.gather(*(delivery for delivery, _ in deliveries))
            self._check(producer)
            async with asyncio.timeout(self._wait_s):
                await producer.commit_transaction()
            return [
                Written(meta.topic, meta.partition, meta.offset, count)
                for meta, (_, count) in zip(written, deliveries, strict=True)
            ]
        except ProducerFenced:
            raise self.fenced() from None
        except (KafkaError, OSError, TimeoutError, AssertionError, IllegalOperation) as error:
            # aiokafka checks a transaction's state with asserts, and refuses a send with
            # IllegalOperation once a failed request (the broker gone) has left the transaction
            # aborted under it: either way the producer is in a state it cannot go on from,
            # which renewing it cures.
            if isinstance(fatal_error(producer), ProducerFenced):
                raise self.fenced() from None
            unsure = isinstance(error, (CommitUnsure, AssertionError, IllegalOperation))
            if not unsure and not worth_waiting_for(error):
                raise KafkaUnavailableError(
                    f"Kafka at {self._kafka.bootstrap} refused a transaction: "
                    f"{type(error).__name__}: {error}"[:300]
                ) from None
            raise CommitUnsure(f"{type(error).__name__}: {error}"[:200]) from None

    def _check(self, producer: AIOKafkaProducer) -> None:
        failed = fatal_error(producer)
        if isinstance(failed, ProducerFenced):
            raise failed
        if failed is not None or transaction_failed(producer):
            raise CommitUnsure(f"the producer stopped: {type(failed).__name__}")

    async def _send(
        self, producer: AIOKafkaProducer, records: Sequence[Routed]
    ) -> list[tuple[asyncio.Future[Any], int]]:
        """Every record into batches, one partition after another within a topic partition
        (aiokafka queues one batch per partition), all partitions at once."""
        by_topic: dict[str, list[OutMessage]] = defaultdict(list)
        for topic, message in records:
            by_topic[topic].append(message)
        self._topics.update(by_topic)
        by_partition: dict[tuple[str, int], list[OutMessage]] = defaultdict(list)
        for topic, messages in by_topic.items():
            count = await self._kafka.partition_count(topic)
            hashed = [m.key if m.partition_key is None else m.partition_key for m in messages]
            for message, partition in zip(messages, partitions_for(hashed, count), strict=True):
                by_partition[(topic, partition)].append(message)
        async with asyncio.timeout(self._wait_s):
            sent = await asyncio.gather(
                *(
                    _send_partition(producer, topic, partition, messages)
                    for (topic, partition), messages in by_partition.items()
                )
            )
        return [delivery for deliveries in sent for delivery in deliveries]


async def _close(producer: AIOKafkaProducer) -> None:
    sender = sender_task(producer)
    if sender is not None and not sender.done() and sender.cancelling():
        # A halted sender is still unwinding: aiokafka's stop() would await it and hand its
        # cancellation to the caller. asyncio.wait lets it finish without raising. (A sender
        # still at work is not waited for: it never ends by itself.)
        await asyncio.wait([sender], timeout=5)
    await close_producer(producer, flush_timeout_s=1.0)


async def _send_partition(
    producer: AIOKafkaProducer, topic: str, partition: int, messages: list[OutMessage]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Each batch's delivery, and how many records it holds."""
    deliveries: list[tuple[asyncio.Future[Any], int]] = []
    batch = producer.create_batch()
    for message in messages:
        headers = message.record_headers()
        appended = batch.append(
            key=message.key, value=message.value, timestamp=None, headers=headers
        )
        if appended is None:  # full: send it and start the next
            batch.close()
            count = batch.record_count()
            deliveries.append((await producer.send_batch(batch, topic, partition=partition), count))
            batch = producer.create_batch()
            batch.append(key=message.key, value=message.value, timestamp=None, headers=headers)
    if batch.record_count():
        batch.close()
        count = batch.record_count()
        deliveries.append((await producer.send_batch(batch, topic, partition=partition), count))
    return deliveries
