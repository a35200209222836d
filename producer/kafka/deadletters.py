"""Reading a pull's dead letters back, and which object keys were written since (for redrive).

Dead letters are found on `<prefix>.deadletter` by their `pull-id` header. An object topic is
compacted by key: a dead letter's object may since have been written by a later pull (or an
earlier redrive), and producing the old one again would replace the newer. So the keys written
to the object topic from an instant on are read too, with when.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from producer.kafka.connection import KafkaConnection
from producer.kafka.consume import read_to_end, read_topic, started_consumer, topic_partitions
from schemas import headers as h


async def read_dead_letters(connection: KafkaConnection, topic: str, pull_id: str) -> list[Any]:
    """Every dead letter of `pull_id` on `topic` (aiokafka ConsumerRecords), in topic order."""
    ours = pull_id.encode()
    return [
        record
        async for record in read_topic(connection, topic)
        if dict(record.headers or ()).get(h.PULL_ID) == ours
    ]


async def keys_written_since(
    connection: KafkaConnection, topic: str, since_ms: int, keys: Iterable[bytes]
) -> dict[bytes, int]:
    """For each of `keys` written to `topic` at or after `since_ms`: its latest write (epoch
    ms). A topic that does not exist has none."""
    wanted = set(keys)
    latest: dict[bytes, int] = {}
    if not wanted:
        return latest
    consumer = await started_consumer(connection)
    try:
        partitions = await topic_partitions(consumer, topic)
        async for record in read_to_end(consumer, partitions, from_timestamp_ms=since_ms):
            if record.key in wanted:
                latest[record.key] = max(latest.get(record.key, 0), record.timestamp)
    finally:
        await consumer.stop()
    return latest
