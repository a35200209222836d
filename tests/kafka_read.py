"""The tests' one topic reader: what is in Kafka, read back by the second client (confluent-kafka,
`sandbox/kafka_reader.py`), never by the producer that wrote it. Read to the partitions' ends as
a consumer with `isolation` sees them (read_committed unless told otherwise)."""

from __future__ import annotations

from collections.abc import Mapping

from sandbox.kafka_reader import Isolation, Record, read_records_async
from schemas.events import EventBase, parse_progress_event


async def records(
    bootstrap: str,
    topic: str,
    isolation: Isolation = "read_committed",
    *,
    security: Mapping[str, str] | None = None,
) -> list[Record]:
    """Every record of a topic (librdkafka `security` settings for a secured listener)."""
    return await read_records_async(bootstrap, topic, isolation=isolation, security=security)


async def keys(bootstrap: str, topic: str, isolation: Isolation = "read_committed") -> list[str]:
    """Keys of every record of a topic, in topic order per partition."""
    return [(r.key or b"").decode() for r in await records(bootstrap, topic, isolation)]


async def progress_events(bootstrap: str, topic: str) -> list[EventBase]:
    """The progress events on a progress topic, parsed."""
    return [parse_progress_event(r.value or b"") for r in await records(bootstrap, topic)]
