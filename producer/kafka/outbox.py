"""Per-partition batching in front of aiokafka's batch API."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from producer.kafka.records import MAX_MESSAGE_BYTES, OutMessage, message_bytes

# An acknowledgement slower than this is reported (an outage aiokafka rode out by itself).
SLOW_ACK_S = 2.0

MAX_SEALED_BATCHES = 4


class DeliveryAbandoned(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """A batch's delivery was given up (its producer replaced or stopped): produce it again."""

    retriable = True


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
        producer: Callable[[], AIOKafkaProducer],
        topic: str,
        partition: int,
        *,
        on_slow_ack: Callable[[str, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._producer = producer  # a getter: the producer may be replaced (see KafkaOutput)
        self._max_message_bytes = max_message_bytes
        # Headers are small: only a record this close to the limit needs them counted.
        self._near_limit = max_message_bytes - 65_536
        self._on_slow_ack = on_slow_ack
        self._on_failure = on_failure
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
        """Add a message to the open batch; returns that batch's acknowledgement future.

        A message larger than a batch is refused here (ValueError): aiokafka would put it alone
        in a batch and leave it to the broker to refuse."""
        futures: set[asyncio.Future[None]] = set()
        self.extend([message], 0, futures)
        return futures.pop()

    def extend(
        self, messages: Sequence[OutMessage], start: int, futures: set[asyncio.Future[None]]
    ) -> int:
        """Add `messages[start:]` to the open batch (sealing full ones) until they are all in or
        the outbox is `full`; adds the futures of the batches holding them to `futures`, and
        returns where it stopped (wait for room, then call again from there).

        A message larger than a batch is refused (ValueError), as `append` says."""
        batch = self._open if self._open is not None else self._start_batch()
        records = _RecordAppender(batch)
        index, end = start, len(messages)
        into_open = False  # whether a message of this call went into the open batch
        while index < end:
            stopped = records.add_all(messages, index, end, self._near_limit, self._check_size)
            into_open = into_open or stopped > index
            index = stopped
            if index == end:
                break
            # messages[index] did not fit: the batch is full; a new one takes any message.
            if into_open:
                assert self._open_done is not None
                futures.add(self._open_done)
            self._seal()
            batch = self._start_batch()
            self._add(batch, messages[index])
            records = _RecordAppender(batch)
            into_open = True
            index += 1
            if self.full:
                break
        if into_open:
            assert self._open_done is not None
            futures.add(self._open_done)
            self._wakeup.set()
        return index

    def _check_size(self, message: OutMessage) -> None:
        if message_bytes(message) > self._max_message_bytes:
            raise ValueError(f"a single message for {self._topic} exceeds the batch size")

    def _start_batch(self) -> Any:
        self._open = self._producer().create_batch()
        self._open_done = asyncio.get_running_loop().create_future()
        return self._open

    @staticmethod
    def _add(batch: Any, message: OutMessage) -> bool:
        """Append to `batch`; False when it is full (aiokafka answers None then)."""
        metadata = batch.append(
            key=message.key, value=message.value, timestamp=None, headers=message.headers
        )
        return metadata is not None

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
                    submitted = time.monotonic()
                    delivery = await self._producer().send_batch(
                        builder, self._topic, partition=self._partition
                    )
                except (KafkaError, OSError) as error:
                    if self._on_failure is not None:
                        self._on_failure()
                    if not done.done():
                        done.set_exception(error)
                    continue
                delivery.add_done_callback(
                    functools.partial(
                        _settle, done, submitted, self._topic, self._on_slow_ack, self._on_failure
                    )
                )
                if not self._sealed:
                    self._seal()
            if self._closing and self._open is None and not self._sealed:
                return

    def fail_pending(self, error: BaseException) -> None:
        """The producer is being replaced: batches not yet handed to it fail (their senders
        produce them again through the new one)."""
        for _, done in self._sealed:
            if not done.done():
                done.set_exception(error)
        self._sealed.clear()
        if self._open_done is not None and not self._open_done.done():
            self._open_done.set_exception(error)
        self._open, self._open_done = None, None
        self._room.set()

    async def close(self) -> None:
        """Submit what is left and stop the submitter."""
        self._closing = True
        self._seal()
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._task, timeout=30)
        except TimeoutError:
            self._task.cancel()


class _RecordAppender:
    """Appends records to one aiokafka batch: straight to its C record builder when the batch
    has one (aiokafka 0.14's `BatchBuilder._builder`, whose next offset is `_relative_offset`;
    the Python `append` around it costs a third of a record's append: check on upgrades), else
    through the public `append`."""

    __slots__ = ("_batch", "_builder", "_offset")

    def __init__(self, batch: Any) -> None:
        self._batch = batch
        builder = getattr(batch, "_builder", None)
        offset = getattr(batch, "_relative_offset", None)
        usable = builder is not None and isinstance(offset, int) and not batch.closed()
        self._builder = builder if usable else None
        self._offset: int = offset if isinstance(offset, int) and usable else 0

    def add_all(
        self,
        messages: Sequence[OutMessage],
        index: int,
        end: int,
        near_limit: int,
        check: Callable[[OutMessage], None],
    ) -> int:
        """Append `messages[index:end]` until one does not fit (the batch is then closed);
        returns the position of the first one not appended. `check` is called on each message
        whose key and value pass `near_limit` bytes."""
        builder = self._builder
        if builder is None:
            append = self._batch.append
            while index < end:
                message = messages[index]
                key, value = message.key, message.value
                if len(key) + (0 if value is None else len(value)) > near_limit:
                    check(message)
                if append(key=key, value=value, timestamp=None, headers=message.headers) is None:
                    break
                index += 1
            return index
        offset, append = self._offset, builder.append
        try:
            while index < end:
                message = messages[index]
                key, value = message.key, message.value
                if len(key) + (0 if value is None else len(value)) > near_limit:
                    check(message)
                if append(offset, None, key, value, message.headers) is None:
                    self._batch.close()
                    break
                offset += 1
                index += 1
        finally:
            # The batch's record count, however the loop ended.
            self._offset = self._batch._relative_offset = offset
        return index


def _settle(
    done: asyncio.Future[None],
    submitted: float,
    topic: str,
    on_slow_ack: Callable[[str, float], None] | None,
    on_failure: Callable[[], None] | None,
    delivery: asyncio.Future[Any],
) -> None:
    failed = delivery.cancelled() or delivery.exception() is not None
    if failed and on_failure is not None:
        on_failure()
    waited = time.monotonic() - submitted
    if on_slow_ack is not None and waited >= SLOW_ACK_S and not delivery.cancelled():
        on_slow_ack(topic, waited)
    if done.done():
        return
    if delivery.cancelled():
        # The producer was replaced (or stopped) before the broker answered: that is a failed
        # produce to retry, never a cancellation of the page waiting for it.
        done.set_exception(DeliveryAbandoned("delivery abandoned by a replaced producer"))
    elif (error := delivery.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(None)
