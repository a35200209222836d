"""Closing a producer unflushed fails what it still queues without leaving a future for asyncio
to log as never retrieved (the batch's, each message's, and its drain waiter)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

from producer.kafka.lifecycle import _fail_queued


async def test_failing_queued_batches_retrieves_every_future() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")  # never started: no socket
    accumulator = producer._message_accumulator
    messages = [
        await accumulator.add_message(TopicPartition("t", p), b"k", b"v", timeout=1)
        for p in (0, 0, 1)
    ]
    batches = [b for queued in accumulator._batches.values() for b in queued]
    assert len(batches) == 2

    _fail_queued(producer, KafkaTimeoutError("producer closed unflushed"))

    futures = [*messages, *(b.future for b in batches), *(b._drain_waiter for b in batches)]
    assert all(f.done() for f in futures)
    # What asyncio checks when a future is collected: False once its exception was read.
    # (Checked before reading any exception here, which would clear it.)
    assert not any(f._log_traceback for f in futures)
    assert all(isinstance(f.exception(), KafkaTimeoutError) for f in futures)
