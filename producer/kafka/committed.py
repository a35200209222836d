"""Reading what is committed, all of it (exactly-once delivery).

A read_committed consumer stops at the last stable offset: the first record of the oldest
transaction still open in the partition. Records committed after that transaction began stay out
of sight until it ends, so a resume that read only up to there could miss its own last commits
(another pull's transaction may share the partition) and send them again. These reads therefore
go on up to the high watermark taken when they start, waiting for the transactions open then to
end, bounded by a deadline (a transaction left open by a killed process ends when that process's
successor fences it, or when Kafka's `transaction.timeout.ms` expires it; one Kafka itself left
open in a partition after ending it, when that pull's next producer settles it: transactions.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiokafka import TopicPartition

from producer.errors import KafkaUnavailableError
from producer.kafka.connection import KafkaConnection
from producer.kafka.consume import read_to_end, started_consumer, topic_partitions


async def read_committed(
    connection: KafkaConnection,
    topic: str,
    *,
    partitions: Iterable[int] | None = None,
    from_timestamp_ms: int | None = None,
    deadline_s: float,
) -> AsyncIterator[Any]:
    """Every committed record of `topic` (or of some partitions) up to the high watermark when
    the read starts, from the beginning or from `from_timestamp_ms`.

    Raises KafkaUnavailableError when open transactions keep it from getting there in time.
    """
    marks = await started_consumer(connection)  # read_uncommitted: its end is the high watermark
    try:
        found = await topic_partitions(marks, topic)
        if partitions is not None:
            chosen = set(partitions)
            found = [tp for tp in found if tp.partition in chosen]
        ends: dict[TopicPartition, int] = await marks.end_offsets(found) if found else {}
    finally:
        await marks.stop()
    consumer = await started_consumer(connection, isolation_level="read_committed")
    try:
        async for record in read_to_end(
            consumer,
            found,
            from_timestamp_ms=from_timestamp_ms,
            ends=ends,
            deadline_s=deadline_s,
        ):
            yield record
    except TimeoutError:
        raise KafkaUnavailableError(
            f"an open Kafka transaction kept {topic} from being read to its end within "
            f"{deadline_s:.0f} s (a puller killed mid-transaction holds it until the same pull "
            "is resumed or the transaction times out; one Kafka left hanging, until that pull is "
            "resumed or `kafka-transactions.sh abort` ends it)"
        ) from None
    finally:
        await consumer.stop()
