"""Reading topics back: the one "read partitions to their end" loop, and consumers without a group.

Checkpoints, digests, `status`, `verify` and the demo's check all read the same way: assign
partitions directly (no group, nothing committed), start at the beginning or at an instant, and
stop at the end offsets taken when the read starts (what is written later is not waited for).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from producer.kafka.aiokafka_internals import fresh_metadata
from producer.kafka.connection import KafkaConnection, as_connection
from producer.kafka.diagnosis import diagnose, refusal

READ_BATCH_RECORDS = 20_000


async def started_consumer(
    connection: KafkaConnection | str, *, isolation_level: str = "read_uncommitted"
) -> AIOKafkaConsumer:
    """A started consumer without a group (partitions are assigned directly, nothing committed).

    A consumer whose start fails is stopped before the error propagates, so nothing leaks.
    """
    consumer = AIOKafkaConsumer(
        **as_connection(connection).client_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    try:
        await consumer.start()
    except BaseException as error:
        await consumer.stop()
        if isinstance(error, (KafkaError, OSError)):
            # A refused login or certificate fails the same way again: say so now.
            found = await diagnose(as_connection(connection))
            if found is not None:
                raise found from None
        raise
    return consumer


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic` (none when it does not exist), from fresh metadata.

    Not `consumer.partitions_for_topic`: that answers from the metadata cached at start, which
    knows nothing of a topic created since (`status --follow` waiting for the first pull).
    """
    cluster = await fresh_metadata(consumer)
    partitions = cluster.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: Iterable[TopicPartition],
    *,
    from_timestamp_ms: int | None = None,
    ends: Mapping[TopicPartition, int] | None = None,
    deadline_s: float | None = None,
) -> AsyncIterator[Any]:
    """Every record of `partitions` from the beginning (or the first at `from_timestamp_ms`) up
    to their end offsets when the read starts (or `ends`). Yields aiokafka ConsumerRecords.

    With `deadline_s`, a read that has not reached its ends by then raises TimeoutError (a
    read_committed consumer cannot pass a transaction that stays open). A topic this client may
    not read is a KafkaAuthError naming the permission."""
    wanted = list(partitions)
    try:
        async for record in _read_to_end(consumer, wanted, from_timestamp_ms, ends, deadline_s):
            yield record
    except TopicAuthorizationFailedError as error:
        topics = ", ".join(sorted({tp.topic for tp in wanted}))
        refused = refusal(error, None, f"READ on topic {topics}")
        assert refused is not None
        raise refused from None


async def _read_to_end(
    consumer: AIOKafkaConsumer,
    wanted: list[TopicPartition],
    from_timestamp_ms: int | None,
    ends: Mapping[TopicPartition, int] | None,
    deadline_s: float | None,
) -> AsyncIterator[Any]:
    if not wanted:
        return
    consumer.assign(wanted)
    if ends is None:
        ends = await consumer.end_offsets(wanted)
    give_up = None if deadline_s is None else time.monotonic() + deadline_s
    if from_timestamp_ms is None:
        await consumer.seek_to_beginning(*wanted)
    else:
        starts = await consumer.offsets_for_times(dict.fromkeys(wanted, from_timestamp_ms))
        for tp in wanted:
            found = starts.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])
    remaining = {tp for tp in wanted if await consumer.position(tp) < ends[tp]}
    while remaining:
        if give_up is not None and time.monotonic() > give_up:
            raise TimeoutError(f"{sorted(str(tp) for tp in remaining)} not read to their end")
        batches = await consumer.getmany(
            *remaining, timeout_ms=1000, max_records=READ_BATCH_RECORDS
        )
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)


async def read_topic(
    connection: KafkaConnection | str,
    topic: str,
    *,
    partitions: Iterable[int] | None = None,
    isolation_level: str = "read_uncommitted",
    from_timestamp_ms: int | None = None,
) -> AsyncIterator[Any]:
    """Every record of `topic` (or of some of its partitions) up to its end when the read starts,
    from the beginning or from the first record at `from_timestamp_ms`.

    Yields aiokafka ConsumerRecords (key, value, headers, partition, offset).
    """
    consumer = await started_consumer(connection, isolation_level=isolation_level)
    try:
        found = await topic_partitions(consumer, topic)
        if partitions is not None:
            chosen = set(partitions)
            found = [tp for tp in found if tp.partition in chosen]
        async for record in read_to_end(consumer, found, from_timestamp_ms=from_timestamp_ms):
            yield record
    finally:
        await consumer.stop()


async def end_offsets(
    connection: KafkaConnection | str,
    partitions: Iterable[tuple[str, int]],
    *,
    isolation_level: str = "read_uncommitted",
) -> dict[tuple[str, int], int]:
    """The end offset of each `(topic, partition)` now: the high watermark, or with
    read_committed the last stable offset (what is committed lies before it)."""
    consumer = await started_consumer(connection, isolation_level=isolation_level)
    try:
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        ends = await consumer.end_offsets(wanted) if wanted else {}
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): end for tp, end in ends.items()}
