"""Topic administration: create what a run writes to, with the configured layout."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from producer.kafka.connection import KafkaConnection
from producer.kafka.records import TopicSpec


async def create_missing_topics(
    connection: KafkaConnection,
    topics: Sequence[TopicSpec],
    *,
    partitions: int,
    replication_factor: int,
    client_id: str,
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created (one attempt)."""
    admin = AIOKafkaAdminClient(**connection.client_options(), client_id=client_id)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                t.name,
                partitions,
                replication_factor,
                topic_configs={"cleanup.policy": "compact" if t.compacted else "delete"},
            )
            for t in missing
        ]
        with contextlib.suppress(TopicAlreadyExistsError):  # another shard was first
            await admin.create_topics(new)
        return [t.name for t in missing]
    finally:
        await admin.close()
