"""The produce path against the embedded broker: `PartitionOutbox` in front of a real
AIOKafkaProducer, and `KafkaOutput` on top of it. No mocked producer: every record is read back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
    UnknownProducerId,
)

from producer.kafka.admin import create_missing_topics
from producer.kafka.connection import KafkaConnection
from producer.kafka.outbox import MAX_SEALED_BATCHES, DeliveryAbandoned, PartitionOutbox
from producer.kafka.output import KafkaOutput, worth_waiting_for
from producer.kafka.partitioning import partition_for
from producer.kafka.records import OutMessage, TopicSpec
from tests.kafka_read import records

PARTITIONS = 3
SMALL_BATCH = 1024  # bytes: a few 300-byte messages fill a batch


async def create_topic(bootstrap: str, topic: str) -> None:
    await create_missing_topics(
        KafkaConnection(bootstrap),
        [TopicSpec(topic, compacted=False)],
        partitions=PARTITIONS,
        replication_factor=1,
        client_id="tests",
    )


async def read(bootstrap: str, topic: str, partitions: list[int] | None = None) -> list[Any]:
    """What is on the topic (or some partitions), read by the second client."""
    found = await records(bootstrap, topic)
    return [r for r in found if partitions is None or r.partition in partitions]


def message(name: str, size: int = 0, headers: list[tuple[str, bytes]] | None = None) -> OutMessage:
    value = f"value of {name}".encode().ljust(size, b".")
    return OutMessage(name.encode(), value, headers or [("h", name.encode())])


@pytest.fixture
async def topic(bootstrap: str, prefix: str) -> str:
    name = f"{prefix}.outbox"
    await create_topic(bootstrap, name)
    return name


@contextlib.asynccontextmanager
async def started_producer(bootstrap: str, **options: Any) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **options
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def outbox_for(
    bootstrap: str, topic: str, partition: int, **options: Any
) -> AsyncIterator[PartitionOutbox]:
    async with started_producer(bootstrap, **options) as producer:
        outbox = PartitionOutbox(producer, topic, partition)
        try:
            yield outbox
        finally:
            await outbox.close()


# -- PartitionOutbox -------------------------------------------------------------------------


async def test_messages_from_many_callers_share_batches_and_all_resolve_on_ack(
    bootstrap: str, topic: str
) -> None:
    async with outbox_for(bootstrap, topic, 1) as outbox:

        async def caller(name: str) -> list[asyncio.Future[None]]:
            futures = []
            for i in range(20):
                futures.append(outbox.append(message(f"{name}-{i:02d}")))
                await asyncio.sleep(0)  # let the others (and the submitter) in
            return futures

        futures = [f for fs in await asyncio.gather(*(caller(c) for c in "abcde")) for f in fs]
        await asyncio.gather(*futures)
    # Each message's future is its batch's: messages appended while one batch was in flight
    # accumulated in the next.
    assert len(set(futures)) < len(futures) / 4
    records = await read(bootstrap, topic, [1])
    keys = [r.key.decode() for r in records]
    assert sorted(keys) == sorted(f"{c}-{i:02d}" for c in "abcde" for i in range(20))
    for c in "abcde":  # each caller's messages in the order it appended them
        assert [k for k in keys if k.startswith(c)] == [f"{c}-{i:02d}" for i in range(20)]


async def test_records_land_on_the_outboxs_partition_intact(bootstrap: str, topic: str) -> None:
    sent = [
        message("plain"),
        message("with-headers", headers=[("ocpi-module", b"tokens"), ("bin", bytes(range(256)))]),
        OutMessage(b"tombstone", None, []),
        message("non-ascii-\u00fc", 5000),
    ]
    async with outbox_for(bootstrap, topic, 2) as outbox:
        await asyncio.gather(*(outbox.append(m) for m in sent))
    assert await read(bootstrap, topic, [0, 1]) == []
    received = await read(bootstrap, topic)
    assert [r.partition for r in received] == [2] * len(sent)
    assert [(r.key, r.value, list(r.headers)) for r in received] == [
        (m.key, m.value, m.record_headers()) for m in sent
    ]


async def test_full_batches_waiting_for_the_broker_make_senders_wait(
    bootstrap: str, topic: str
) -> None:
    async with outbox_for(bootstrap, topic, 0, max_batch_size=SMALL_BATCH) as outbox:
        futures: list[asyncio.Future[None]] = []
        # No await in between: the submitter gets no turn, so full batches pile up.
        while not outbox.full:
            futures.append(outbox.append(message(f"m{len(futures):03d}", 300)))
        assert len(set(futures)) == MAX_SEALED_BATCHES + 1  # the sealed ones and the open one
        await outbox.wait_for_room()
        assert not outbox.full
        await asyncio.gather(*futures)
    assert len(await read(bootstrap, topic, [0])) == len(futures)


async def test_fail_pending_fails_unsent_batches_and_the_outbox_goes_on(
    bootstrap: str, topic: str
) -> None:
    async with outbox_for(bootstrap, topic, 0, max_batch_size=SMALL_BATCH) as outbox:
        doomed = [outbox.append(message(f"doomed-{i}", 300)) for i in range(10)]
        assert len(set(doomed)) > 1  # sealed batches and the open one
        error = DeliveryAbandoned("the producer was replaced")
        outbox.fail_pending(error)
        assert all(f.exception() is error for f in doomed)
        assert not outbox.full
        await outbox.append(message("after"))
    # The failed batches were never handed to the producer: their senders produce them again.
    assert [r.key for r in await read(bootstrap, topic)] == [b"after"]


async def test_close_submits_what_is_left(bootstrap: str, topic: str) -> None:
    async with started_producer(bootstrap) as producer:
        outbox = PartitionOutbox(producer, topic, 1)
        futures = [outbox.append(message(f"left-{i}")) for i in range(10)]
        await outbox.close()
        await asyncio.gather(*futures)
    assert [r.key for r in await read(bootstrap, topic, [1])] == [
        f"left-{i}".encode() for i in range(10)
    ]


async def test_a_message_larger_than_a_batch_is_refused(bootstrap: str, topic: str) -> None:
    async with started_producer(bootstrap, max_batch_size=SMALL_BATCH) as producer:
        outbox = PartitionOutbox(producer, topic, 0, max_message_bytes=SMALL_BATCH)
        with pytest.raises(ValueError, match="exceeds the batch size"):
            outbox.append(message("huge", 4 * SMALL_BATCH))
        await outbox.close()


# -- KafkaOutput -----------------------------------------------------------------------------


@pytest.fixture
async def kafka(bootstrap: str) -> AsyncIterator[KafkaOutput]:
    output = KafkaOutput(bootstrap, partitions=PARTITIONS, deadline_s=30.0)
    await output.start()
    try:
        yield output
    finally:
        await output.stop()


async def test_send_puts_each_key_on_kafkas_partition_and_resolves_when_acked(
    bootstrap: str, prefix: str, kafka: KafkaOutput
) -> None:
    topic = f"{prefix}.objects"
    await kafka.ensure_topics([TopicSpec(topic, compacted=True)])
    assert await kafka.partition_count(topic) == PARTITIONS
    sent = [message(f"NL/SBX/{i:04d}/RFID") for i in range(60)]
    acked = await kafka.send(topic, sent)
    await kafka.wait_acked([acked])
    assert acked.done()
    received = await read(bootstrap, topic)
    assert {(r.key, r.value, tuple(r.headers)) for r in received} == {
        (m.key, m.value, tuple(m.record_headers())) for m in sent
    }
    assert all(r.partition == partition_for(r.key, PARTITIONS) for r in received)
    assert len({r.partition for r in received}) == PARTITIONS  # 60 keys spread over all three


async def test_a_partition_key_overrides_the_key_for_partitioning(
    bootstrap: str, prefix: str, kafka: KafkaOutput
) -> None:
    topic = f"{prefix}.checkpoints"
    await kafka.ensure_topics([TopicSpec(topic, compacted=True)])
    scope = b"sbx/tokens"
    sent = [
        OutMessage(f"sbx/tokens/p/window/{i:05d}".encode(), b"{}", [], scope) for i in range(20)
    ]
    await kafka.send_and_wait(topic, sent)
    received = await read(bootstrap, topic)
    assert [r.key for r in received] == [m.key for m in sent]
    assert {r.partition for r in received} == {partition_for(scope, PARTITIONS)}


async def test_nothing_to_send_or_wait_for(prefix: str, kafka: KafkaOutput) -> None:
    await kafka.send_and_wait(f"{prefix}.never-created", [])
    await kafka.wait_acked([])


@pytest.mark.parametrize(
    ("error", "worth_it"),
    [
        # The broker may yet accept: wait and retry.
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (OSError("network unreachable"), True),
        (KafkaTimeoutError(), True),
        (KafkaConnectionError(), True),
        (RequestTimedOutError(), True),
        (NotLeaderForPartitionError(), True),
        (LeaderNotAvailableError(), True),
        (DeliveryAbandoned("producer replaced"), True),
        # A lost producer identity: a new producer can produce again.
        (OutOfOrderSequenceNumber(), True),
        (UnknownProducerId(), True),
        (InvalidProducerEpoch(), True),
        (ProducerFenced(), True),
        # The same answer every time: fail at once.
        (TopicAuthorizationFailedError(), False),
        (MessageSizeTooLargeError(), False),
        (RecordTooLargeError(), False),
        (KafkaError("something else"), False),
        (ValueError("not Kafka's"), False),
    ],
)
def test_which_errors_are_worth_waiting_for(error: BaseException, worth_it: bool) -> None:
    assert worth_waiting_for(error) is worth_it
