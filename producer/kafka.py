"""The aiokafka shell: topics, partitioning, batched produce, acknowledgements, broker waits.

Messages are appended to per-partition batches (aiokafka's batch API, ~10x the per-message
`send()` rate) with the partition chosen exactly as Kafka's default partitioner does
(murmur2 of the key), so one key always lands on one partition whoever produced it. A page counts
as produced only when every batch holding its messages is acknowledged (acks=all, idempotent).
When the broker is unreachable, a page's produce is retried with backoff until a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from producer.errors import KafkaUnavailableError

log = logging.getLogger("ocpi_puller")

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")
MAX_BATCH_BYTES = 1 << 20
Header = tuple[str, bytes]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), as `org.apache.kafka.common.utils.Utils.murmur2`."""
    length = len(data)
    h = 0x9747B28C ^ length
    tail = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:tail]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The default partitioner's choice: `toPositive(murmur2(key)) % partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """murmur2 of many keys at once: keys of one length are hashed as numpy columns.

    Same result as `murmur2` per key (tested), ~20x faster for a page of keys.
    """
    result = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(index)
    m = np.uint32(_M)
    for length, indices in by_length.items():
        rows = np.frombuffer(b"".join([keys[i] for i in indices]), dtype=np.uint8)
        rows = rows.reshape(len(indices), length)
        h = np.full(len(indices), (0x9747B28C ^ length) & _MASK, dtype=np.uint32)
        tail = length & ~3
        if tail:
            words = np.ascontiguousarray(rows[:, :tail]).view("<u4")
            for column in range(tail // 4):
                k = words[:, column] * m
                k ^= k >> np.uint32(24)
                k *= m
                h *= m
                h ^= k
        extra = length & 3
        if extra >= 3:
            h ^= rows[:, tail + 2].astype(np.uint32) << np.uint32(16)
        if extra >= 2:
            h ^= rows[:, tail + 1].astype(np.uint32) << np.uint32(8)
        if extra >= 1:
            h ^= rows[:, tail].astype(np.uint32)
            h *= m
        h ^= h >> np.uint32(13)
        h *= m
        h ^= h >> np.uint32(15)
        result[indices] = h
    return [int(v) for v in result]


def partitions_for(keys: Sequence[bytes], partitions: int) -> list[int]:
    """`partition_for` of every key."""
    return [(h & 0x7FFFFFFF) % partitions for h in murmur2_many(keys)]


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One record to produce; `value=None` is a tombstone.

    `partition_key` overrides what the partition is hashed from (checkpoint records of one
    partner module share a partition); by default it is the key, as Kafka's partitioner does.
    """

    key: bytes
    value: bytes | None
    headers: list[Header]
    partition_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic the puller needs, and whether it is compacted."""

    name: str
    compacted: bool


@dataclass(frozen=True, slots=True)
class KafkaWait:
    """The broker did not acknowledge; the produce is retried after `wait_s`."""

    topic: str
    attempt: int
    wait_s: float
    reason: str


class KafkaOutput:
    """One idempotent producer for a whole run (every partner and topic)."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "ocpi-puller",
        partitions: int = 6,
        replication_factor: int = 1,
        deadline_s: float = 300.0,
        request_timeout_ms: int = 30_000,
        on_wait: Callable[[KafkaWait], None] | None = None,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._partitions = partitions
        self._replication = replication_factor
        self._deadline_s = deadline_s
        self._on_wait = on_wait
        self._rng = random.Random()
        self._partition_counts: dict[str, int] = {}
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_BATCH_BYTES + 64 * 1024,
            request_timeout_ms=request_timeout_ms,
            **{"compression_type": "lz4", **(producer_options or {})},
        )
        self._started = False
        self._outboxes: dict[tuple[str, int], PartitionOutbox] = {}
        self.waits = 0

    async def start(self) -> None:
        """Connect, retrying until the deadline (the broker may still be starting)."""
        await self._until_deadline("connect", self._producer.start)
        self._started = True

    async def stop(self) -> None:
        """Flush what is buffered and disconnect."""
        if self._started:
            self._started = False
            outboxes = list(self._outboxes.values())
            await asyncio.gather(*(o.close() for o in outboxes), return_exceptions=True)
            await self._producer.stop()

    async def _until_deadline(self, what: str, action: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self._deadline_s
        attempt = 0
        while True:
            attempt += 1
            try:
                return await action()
            except (TimeoutError, KafkaError, OSError) as error:
                reason = f"{type(error).__name__}: {error}"[:200]
                wait = min(10.0, 0.5 * 2 ** min(attempt, 6)) * (0.5 + self._rng.random() / 2)
                if time.monotonic() + wait > deadline:
                    raise KafkaUnavailableError(
                        f"Kafka at {self._bootstrap} unavailable for {self._deadline_s:.0f} s "
                        f"({what}: {reason})"
                    ) from None
                self.waits += 1
                if self._on_wait is not None:
                    self._on_wait(KafkaWait(what, attempt, wait, reason))
                log.warning("Kafka %s failed (%s); retrying in %.1f s", what, reason, wait)
                await asyncio.sleep(wait)

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet (partitions/replication as configured)."""

        async def create() -> None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap, client_id=self._client_id
            )
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                missing = [t for t in topics if t.name not in existing]
                if not missing:
                    return
                new = [
                    NewTopic(
                        t.name,
                        self._partitions,
                        self._replication,
                        topic_configs={"cleanup.policy": "compact" if t.compacted else "delete"},
                    )
                    for t in missing
                ]
                with contextlib.suppress(TopicAlreadyExistsError):  # another shard was first
                    await admin.create_topics(new)
            finally:
                await admin.close()

        await self._until_deadline("create topics", create)

    async def partition_count(self, topic: str) -> int:
        """Partitions of `topic` (cached; metadata is fetched once)."""
        count = self._partition_counts.get(topic)
        if count is None:
            partitions = await self._producer.partitions_for(topic)
            count = len(partitions)
            self._partition_counts[topic] = count
        return count

    async def send(self, topic: str, messages: Sequence[OutMessage]) -> asyncio.Future[None]:
        """Queue messages; the returned future resolves when Kafka acknowledged all of them.

        Waits (backpressure) while a partition already holds `MAX_SEALED_BATCHES` full batches.
        """
        partitions = await self.partition_count(topic)
        waits: set[asyncio.Future[None]] = set()
        hashed = [m.key if m.partition_key is None else m.partition_key for m in messages]
        for message, partition in zip(messages, partitions_for(hashed, partitions), strict=True):
            outbox = self._outbox(topic, partition)
            if outbox.full:
                await outbox.wait_for_room()
            waits.add(outbox.append(message))
        return asyncio.ensure_future(_all_acked(list(waits)))

    def _outbox(self, topic: str, partition: int) -> PartitionOutbox:
        outbox = self._outboxes.get((topic, partition))
        if outbox is None:
            outbox = PartitionOutbox(self._producer, topic, partition)
            self._outboxes[(topic, partition)] = outbox
        return outbox

    async def send_and_wait(self, topic: str, messages: Sequence[OutMessage]) -> None:
        """Produce and wait for every acknowledgement, retrying the lot until the deadline."""

        async def attempt() -> None:
            await (await self.send(topic, messages))

        await self._until_deadline(f"produce to {topic}", attempt)


MAX_SEALED_BATCHES = 4


class PartitionOutbox:
    """Batches for one topic partition, handed to aiokafka one at a time.

    aiokafka's batch API admits one queued batch per partition and makes concurrent callers wait
    (with a timeout that shrinks faster than time passes). Here there is exactly one submitter
    per partition, and messages from every caller accumulate in the open batch while the previous
    one is queued or in flight: natural batching, no contention. Each message's future is that of
    the batch holding it.
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, partition: int) -> None:
        self._producer = producer
        self._topic = topic
        self._partition = partition
        self._open: Any = None
        self._open_done: asyncio.Future[None] | None = None
        self._sealed: deque[tuple[Any, asyncio.Future[None]]] = deque()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._task = asyncio.create_task(self._submit_forever())

    @property
    def full(self) -> bool:
        """Too many full batches wait for the broker: senders should wait for room."""
        return len(self._sealed) >= MAX_SEALED_BATCHES

    async def wait_for_room(self) -> None:
        """Backpressure: wait while too many full batches are waiting for the broker."""
        while len(self._sealed) >= MAX_SEALED_BATCHES:
            self._room.clear()
            await self._room.wait()

    def append(self, message: OutMessage) -> asyncio.Future[None]:
        """Add a message to the open batch; returns that batch's acknowledgement future."""
        if self._open is None:
            self._open = self._producer.create_batch()
            self._open_done = asyncio.get_running_loop().create_future()
        if (
            self._open.append(
                key=message.key, value=message.value, timestamp=None, headers=message.headers
            )
            is None
        ):
            self._seal()
            self._open = self._producer.create_batch()
            self._open_done = asyncio.get_running_loop().create_future()
            if (
                self._open.append(
                    key=message.key, value=message.value, timestamp=None, headers=message.headers
                )
                is None
            ):
                raise ValueError(f"a single message for {self._topic} exceeds the batch size")
        self._wakeup.set()
        assert self._open_done is not None
        return self._open_done

    def _seal(self) -> None:
        if self._open is not None and self._open.record_count():
            assert self._open_done is not None
            self._sealed.append((self._open, self._open_done))
        self._open, self._open_done = None, None

    async def _submit_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._sealed:
                self._seal()  # nothing full is waiting: send what has accumulated
            while self._sealed:
                builder, done = self._sealed.popleft()
                self._room.set()
                builder.close()  # a closed batch is ready at once (no linger)
                try:
                    delivery = await self._producer.send_batch(
                        builder, self._topic, partition=self._partition
                    )
                except (KafkaError, OSError) as error:
                    if not done.done():
                        done.set_exception(error)
                    continue
                delivery.add_done_callback(functools.partial(_settle, done))
                if not self._sealed:
                    self._seal()
            if self._closing and self._open is None and not self._sealed:
                return

    async def close(self) -> None:
        """Submit what is left and stop the submitter."""
        self._closing = True
        self._seal()
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._task, timeout=30)
        except TimeoutError:
            self._task.cancel()


def _settle(done: asyncio.Future[None], delivery: asyncio.Future[Any]) -> None:
    if done.done():
        return
    if delivery.cancelled():
        done.cancel()
    elif (error := delivery.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(None)


async def _all_acked(futures: list[asyncio.Future[Any]]) -> None:
    if futures:
        await asyncio.gather(*futures)


async def read_topic(bootstrap_servers: str, topic: str) -> AsyncIterator[Any]:
    """Every record of `topic` from the beginning up to its end when the read starts.

    Yields aiokafka ConsumerRecords (key, value, headers, partition, offset). No consumer group:
    partitions are assigned directly, so nothing is committed.
    """
    consumer = await started_consumer(bootstrap_servers)
    try:
        partitions = await _partitions_of(consumer, topic)
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def started_consumer(bootstrap_servers: str) -> AIOKafkaConsumer:
    """A started consumer without a group (partitions are assigned directly, nothing committed).

    A consumer whose start fails is stopped before the error propagates, so nothing leaks.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    topics = await consumer.topics()
    if topic not in topics:
        return []
    partitions = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(partitions)]
