"""Topic administration: create what a run writes to, with the configured layout."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import NoError, TopicAlreadyExistsError, for_code

from producer.kafka.connection import KafkaConnection
from producer.kafka.diagnosis import refusal
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
            response = await admin.create_topics(new)
            _raise_topic_errors(response, connection)
        return [t.name for t in missing]
    finally:
        await admin.close()


def _raise_topic_errors(response: Any, connection: KafkaConnection) -> None:
    """Raise what the broker refused per topic (aiokafka returns it, raising nothing); a topic
    another shard created first is no error."""
    entries = getattr(response, "topic_errors", None) or getattr(response, "topics", None) or []
    for entry in entries:
        name, code = entry[0], entry[1]
        error_type = for_code(code)
        if error_type in (NoError, TopicAlreadyExistsError):
            continue
        error = error_type(name)
        refused = refusal(error, connection, f"CREATE on topic {name}")
        if refused is not None:
            raise refused
        raise error
