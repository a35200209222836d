"""Per-partition batching in front of aiokafka's batch API, and re-delivery of what failed.

A batch keeps its messages until the broker acknowledges it. When its delivery fails in a way a
new attempt can mend (the producer's identity lost, the producer replaced, a retriable error),
only its own messages are appended again, through the producer in use once any renewal is over:
the batches the broker acknowledged are never sent twice, and the callers waiting for the batch
see nothing but a later acknowledgement.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from producer.errors import KafkaUnavailableError
from producer.kafka.aiokafka_internals import RecordAppender
from producer.kafka.records import MAX_MESSAGE_BYTES, OutMessage, message_bytes
from producer.retry import RetryPolicy

# An acknowledgement slower than this is reported (an outage aiokafka rode out by itself).
SLOW_ACK_S = 2.0

MAX_SEALED_BATCHES = 4
# A batch delivered again waits first (0.2 s, doubling per redelivery in a row, at most 5 s): a
# broker that keeps refusing is not hammered while the caller's deadline runs.
REDELIVERY = RetryPolicy(base_delay_s=0.2, max_delay_s=5.0, jitter=False)

# The broker no longer knows this producer (e.g. it restarted without its producer state): only a
# new producer, with a new id, can produce again.
PRODUCER_IDENTITY_LOST = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


@dataclass(frozen=True, slots=True)
class Acked:
    """A batch Kafka acknowledged: where its last record is (offset -1 if not told)."""

    topic: str
    partition: int
    last_offset: int
    at: float  # when (monotonic)


class DeliveryAbandoned(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """A batch's delivery was given up (its producer replaced or stopped): produce it again."""

    retriable = True


class ProducerSource(Protocol):
    """Where an outbox gets its producer: the one in use, its generation (a new one replaces a
    producer the broker forgot), and the renewal of a producer that lost its identity."""

    def current(self) -> tuple[AIOKafkaProducer, int]:
        """The producer in use and its generation."""
        ...

    async def settled(self) -> None:
        """Return once no renewal is under way (raises if the renewal failed for good)."""
        ...

    def identity_lost(self, error: BaseException, generation: int) -> None:
        """The producer of `generation` lost its identity: replace it (once)."""
        ...


@dataclass(slots=True)
class FixedProducer:
    """One producer that is never replaced (tests; short-lived writers)."""

    producer: AIOKafkaProducer

    def current(self) -> tuple[AIOKafkaProducer, int]:
        """The producer, generation 0 for ever."""
        return self.producer, 0

    async def settled(self) -> None:
        """Never renewing."""

    def identity_lost(self, error: BaseException, generation: int) -> None:
        """Nothing to renew: the batch is delivered again through the same producer."""


def should_redeliver(error: BaseException, *, replaced: bool) -> bool:
    """Whether a failed delivery is worth another one: always when its producer was replaced
    since (whatever it said was about the abandoned producer), when the identity was lost, when
    the delivery was abandoned, or when the broker called the error retriable."""
    if replaced or isinstance(error, (DeliveryAbandoned, *PRODUCER_IDENTITY_LOST)):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


@dataclass(slots=True)
class _Batch:
    """Messages on their way in one aiokafka batch; `done` resolves when Kafka has them all."""

    done: asyncio.Future[Acked]
    builder: Any
    messages: list[OutMessage] = field(default_factory=list)


class PartitionOutbox:
    """Batches for one topic partition, handed to aiokafka one at a time.

    aiokafka's batch API admits one queued batch per partition and makes concurrent callers wait
    (with a timeout that shrinks faster than time passes). Here there is exactly one submitter
    per partition, and messages from every caller accumulate in the open batch while the previous
    one is queued or in flight: natural batching, no contention. Each message's future is that of
    the batch holding it.
    """

    def __init__(
        self,
        source: ProducerSource | AIOKafkaProducer,
        topic: str,
        partition: int,
        *,
        on_slow_ack: Callable[[str, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        on_acked: Callable[[str, int, int, int, float], None] | None = None,
        on_generation_acked: Callable[[int], None] | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._source = FixedProducer(source) if isinstance(source, AIOKafkaProducer) else source
        # Told of every acknowledged batch: (topic, partition, base offset, records).
        self._on_acked = on_acked
        # Told which producer generation a batch was acknowledged by (see kept.py).
        self._on_generation_acked = on_generation_acked
        self._max_message_bytes = max_message_bytes
        # Headers are small: only a record this close to the limit needs them counted.
        self._near_limit = max_message_bytes - 65_536
        self._on_slow_ack = on_slow_ack
        self._on_failure = on_failure
        self._topic = topic
        self._partition = partition
        self._open: _Batch | None = None
        self._sealed: deque[_Batch] = deque()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._redeliveries = 0
        self.redelivered_messages = 0
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

    def append(self, message: OutMessage) -> asyncio.Future[Acked]:
        """Add a message to the open batch; returns that batch's acknowledgement future.

        A message larger than a batch is refused here (ValueError): aiokafka would put it alone
        in a batch and leave it to the broker to refuse."""
        futures: set[asyncio.Future[Acked]] = set()
        self.extend([message], 0, futures)
        return futures.pop()

    def extend(
        self, messages: Sequence[OutMessage], start: int, futures: set[asyncio.Future[Acked]]
    ) -> int:
        """Add `messages[start:]` to the open batch (sealing full ones) until they are all in or
        the outbox is `full`; adds the futures of the batches holding them to `futures`, and
        returns where it stopped (wait for room, then call again from there).

        A message larger than a batch is refused (ValueError), as `append` says."""
        batch = self._open if self._open is not None else self._start_batch()
        records = RecordAppender(batch.builder)
        index, end = start, len(messages)
        into_open = False  # whether a message of this call went into the open batch
        while index < end:
            stopped = records.add_all(messages, index, end, self._near_limit, self._check_size)
            if stopped > index:
                batch.messages.extend(messages[index:stopped])
                into_open = True
            index = stopped
            if index == end:
                break
            # messages[index] did not fit: the batch is full; a new one takes any message.
            if into_open:
                futures.add(batch.done)
            self._seal()
            batch = self._start_batch()
            self._check_size(messages[index])
            self._add(batch, messages[index])
            records = RecordAppender(batch.builder)
            into_open = True
            index += 1
            if self.full:
                break
        if into_open:
            futures.add(batch.done)
            self._wakeup.set()
        return index

    def _check_size(self, message: OutMessage) -> None:
        if message_bytes(message) > self._max_message_bytes:
            raise ValueError(f"a single message for {self._topic} exceeds the batch size")

    def _start_batch(self) -> _Batch:
        # A builder holds bytes only: any producer with the same options may send it.
        producer, _ = self._source.current()
        self._open = _Batch(asyncio.get_running_loop().create_future(), producer.create_batch())
        return self._open

    @staticmethod
    def _add(batch: _Batch, message: OutMessage) -> bool:
        """Append to `batch`; False when it is full (aiokafka answers None then)."""
        metadata = batch.builder.append(
            key=message.key, value=message.value, timestamp=None, headers=message.record_headers()
        )
        if metadata is None:
            return False
        batch.messages.append(message)
        return True

    def _seal(self) -> None:
        if self._open is not None and self._open.messages:
            self._sealed.append(self._open)
        self._open = None

    async def _submit_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._sealed:
                self._seal()  # nothing full is waiting: send what has accumulated
            while self._sealed:
                if self._redeliveries:
                    await asyncio.sleep(self._redelivery_backoff())
                batch = self._sealed.popleft()
                self._room.set()
                await self._submit(batch)
                if not self._sealed:
                    self._seal()
            if self._closing and self._open is None and not self._sealed:
                return

    async def _submit(self, batch: _Batch) -> None:
        try:
            await self._source.settled()  # a producer being renewed: wait for the new one
        except (KafkaError, OSError, KafkaUnavailableError) as error:
            if not batch.done.done():
                batch.done.set_exception(error)
            return
        producer, generation = self._source.current()
        batch.builder.close()  # a closed batch is ready at once (no linger)
        try:
            submitted = time.monotonic()
            delivery = await producer.send_batch(
                batch.builder, self._topic, partition=self._partition
            )
        except (KafkaError, OSError) as error:
            self._failed(batch, generation, error)
            return
        delivery.add_done_callback(functools.partial(self._settle, batch, generation, submitted))

    def _settle(
        self, batch: _Batch, generation: int, submitted: float, delivery: asyncio.Future[Any]
    ) -> None:
        if delivery.cancelled():
            self._failed(batch, generation, DeliveryAbandoned("delivery abandoned"))
            return
        error = delivery.exception()
        if error is not None:
            self._failed(batch, generation, error)
            return
        now = time.monotonic()
        waited = now - submitted
        if self._on_slow_ack is not None and waited >= SLOW_ACK_S:
            self._on_slow_ack(self._topic, waited)
        self._redeliveries = 0
        base = getattr(delivery.result(), "offset", -1)
        records = batch.builder.record_count()
        if self._on_acked is not None:
            self._on_acked(self._topic, self._partition, base, records, now)
        if self._on_generation_acked is not None:
            self._on_generation_acked(generation)
        if not batch.done.done():
            batch.done.set_result(Acked(self._topic, self._partition, base + records - 1, now))

    def _failed(self, batch: _Batch, generation: int, error: BaseException) -> None:
        """A batch the broker did not take: delivered again when that can mend it (only its own
        messages: the rest were acknowledged), else its senders learn the error."""
        if self._on_failure is not None:
            self._on_failure()
        if batch.done.done():
            return
        _, current = self._source.current()
        if isinstance(error, PRODUCER_IDENTITY_LOST):
            self._source.identity_lost(error, generation)
        if self._closing or not should_redeliver(error, replaced=generation != current):
            batch.done.set_exception(error)
            return
        self._redeliveries += 1
        self.redelivered_messages += len(batch.messages)
        again = [self.append(message) for message in batch.messages]
        _settle_with(batch.done, again)

    def _redelivery_backoff(self) -> float:
        return REDELIVERY.ceiling(self._redeliveries)

    def fail_pending(self, error: BaseException) -> None:
        """Give up the batches not yet handed to the producer: their senders learn `error`."""
        for batch in [*self._sealed, *([self._open] if self._open else [])]:
            if not batch.done.done():
                batch.done.set_exception(error)
        self._sealed.clear()
        self._open = None
        self._room.set()

    async def close(self, timeout_s: float = 30.0) -> None:
        """Submit what is left and stop the submitter; what is still undelivered after
        `timeout_s` is abandoned (its senders learn it)."""
        self._closing = True
        self._seal()
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=timeout_s)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        abandoned = DeliveryAbandoned("the outbox closed before Kafka acknowledged")
        for batch in [*self._sealed, *([self._open] if self._open else [])]:
            if not batch.done.done():
                batch.done.set_exception(abandoned)


def _settle_with(done: asyncio.Future[Acked], parts: list[asyncio.Future[Acked]]) -> None:
    """Resolve `done` as the futures of a batch's messages delivered again resolve (where the
    last of them is, and the earliest of their acknowledgements)."""
    distinct = list(dict.fromkeys(parts))
    remaining = [len(distinct)]
    merged: list[Acked] = []

    def one_settled(part: asyncio.Future[Acked]) -> None:
        if done.done():
            if not part.cancelled():
                part.exception()  # retrieved: the batch's senders already know
            return
        if part.cancelled():
            done.set_exception(DeliveryAbandoned("delivery abandoned"))
        elif (error := part.exception()) is not None:
            done.set_exception(error)
        else:
            acked = part.result()
            if merged:
                last = max(acked.last_offset, merged[0].last_offset)
                acked = dataclasses.replace(acked, last_offset=last, at=min(acked.at, merged[0].at))
            merged[:] = [acked]
            remaining[0] -= 1
            if not remaining[0]:
                done.set_result(merged[0])

    for part in distinct:
        part.add_done_callback(one_settled)
