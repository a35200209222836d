"""The second client: what is in Kafka, read with confluent-kafka (librdkafka), not with the
aiokafka that wrote it, as a consumer would read it.

One reader for every end-to-end check (tests, the chaos run): it assigns every partition of a
topic from the beginning, with no group, and reads until librdkafka reports the end of each
partition. By default it reads `read_committed`, as a downstream consumer should: records of
aborted transactions are skipped, and the end of a partition is its last stable offset (a
transaction still open holds back what follows it, exactly as for any consumer).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

Isolation = Literal["read_committed", "read_uncommitted"]


@dataclass(frozen=True, slots=True)
class Record:
    """One record as read back (the attributes an aiokafka ConsumerRecord has too)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes], ...] = field(default=())


def read_records(
    bootstrap: str,
    topic: str,
    *,
    isolation: Isolation = "read_committed",
    security: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
) -> list[Record]:
    """Every record of `topic` a consumer sees now (none if the topic does not exist).

    `security` holds librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`). Raises
    TimeoutError if the partitions' ends are not reached within `timeout_s`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"second-client-{uuid.uuid4().hex}",  # never joined: partitions assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 16 * 1024 * 1024,
            "fetch.wait.max.ms": 100,
            "log_level": 3,
            **(security or {}),
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return []
        partitions = sorted(found.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        remaining = set(partitions)
        records: list[Record] = []
        give_up = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > give_up:
                raise TimeoutError(f"{topic}: partitions {sorted(remaining)} not read to their end")
            for message in consumer.consume(num_messages=10_000, timeout=0.1):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.discard(message.partition())
                        continue
                    raise KafkaException(error)
                _, timestamp = message.timestamp()
                headers = message.headers() or []
                pairs = headers.items() if isinstance(headers, dict) else headers
                records.append(
                    Record(
                        topic=topic,
                        partition=message.partition() or 0,
                        offset=message.offset() or 0,
                        key=_bytes(message.key()),
                        value=_bytes(message.value()),
                        timestamp=timestamp,
                        headers=tuple((name, _bytes(value) or b"") for name, value in pairs),
                    )
                )
        return records
    finally:
        consumer.close()


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


async def read_records_async(
    bootstrap: str,
    topic: str,
    *,
    isolation: Isolation = "read_committed",
    security: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
) -> list[Record]:
    """`read_records` off the event loop (librdkafka blocks)."""
    return await asyncio.to_thread(
        read_records,
        bootstrap,
        topic,
        isolation=isolation,
        security=security,
        timeout_s=timeout_s,
    )
