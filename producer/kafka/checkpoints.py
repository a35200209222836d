"""Resume state on the compacted `<prefix>.checkpoints` topic.

Keys (all of one partner module land on one partition, chosen from `<partner>/<module>`, so a
resume reads a single partition):
* `<partner>/<module>/<pull_id>`: the pull's plan (pinned date_to, windows);
* `<partner>/<module>/<pull_id>/window/<index>`: how far each window got;
* `<partner>/<module>`: the last complete pull (where `--incremental` starts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from pydantic import ValidationError

from producer.errors import ConfigError
from producer.kafka.consume import read_to_end, started_consumer
from producer.kafka.output import KafkaOutput
from producer.kafka.partitioning import partition_for
from producer.kafka.records import OutMessage
from schemas.records import (
    PullPlan,
    SyncState,
    WindowCheckpoint,
    parse_checkpoint_record,
)

log = logging.getLogger("ocpi_puller")


@dataclass(slots=True)
class StoredState:
    """What the checkpoints topic holds for one partner module (and one pull)."""

    plan: PullPlan | None = None
    windows: dict[int, WindowCheckpoint] = field(default_factory=dict)
    sync: SyncState | None = None


class CheckpointStore:
    """Reads and writes one partner module's checkpoint records."""

    def __init__(self, kafka: KafkaOutput, topic: str, partner: str, module: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self._scope = f"{partner}/{module}"
        self._pending: list[asyncio.Future[None]] = []
        # The latest record per key, re-sent by flush() if an outage swallowed any of them.
        self._latest: dict[str, bytes] = {}

    def plan_key(self, pull_id: str) -> str:
        """Key of a pull's plan record."""
        return f"{self._scope}/{pull_id}"

    def window_key(self, pull_id: str, index: int) -> str:
        """Key of a window's progress record."""
        return f"{self._scope}/{pull_id}/window/{index:05d}"

    async def _partition(self) -> int:
        count = await self._kafka.partition_count(self.topic)
        return partition_for(self._scope.encode(), count)

    async def load(self, pull_id: str | None) -> StoredState:
        """The latest plan and window records of `pull_id`, and the module's sync state."""
        partition = await self._partition()
        state = StoredState()
        plan_key = None if pull_id is None else self.plan_key(pull_id).encode()
        window_prefix = None if pull_id is None else f"{self.plan_key(pull_id)}/window/".encode()
        sync_key = self._scope.encode()
        async for message in self._read(partition):
            key = message.key
            if key is None or message.value is None:
                continue
            if (
                key != sync_key
                and key != plan_key
                and not (window_prefix is not None and key.startswith(window_prefix))
            ):
                continue
            try:
                record = parse_checkpoint_record(message.value)
            except ValidationError:
                log.warning("ignoring an unreadable checkpoint record under %r", key)
                continue
            if isinstance(record, PullPlan):
                state.plan = record
            elif isinstance(record, WindowCheckpoint):
                state.windows[record.window] = record
            else:
                state.sync = record
        return state

    async def _read(self, partition: int) -> AsyncIterator[Any]:
        """Every record of the partition, to its end when the read starts."""
        consumer = await started_consumer(self._kafka.connection)
        try:
            async for message in read_to_end(consumer, [TopicPartition(self.topic, partition)]):
                yield message
        finally:
            await consumer.stop()

    def _record(self, key: str, value: bytes) -> OutMessage:
        return OutMessage(key.encode(), value, [], partition_key=self._scope.encode())

    async def _write(self, key: str, value: bytes) -> None:
        self._latest[key] = value
        self._pending.append(await self._kafka.send(self.topic, [self._record(key, value)]))
        # Keep only what is unfinished or failed (flush looks at those).
        self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]

    async def save_plan(self, plan: PullPlan) -> None:
        """Write the plan and wait for Kafka: shards and resumes depend on it."""
        await self._kafka.send_and_wait(
            self.topic, [self._record(self.plan_key(plan.pull_id), plan.model_dump_json().encode())]
        )

    def window_record(self, checkpoint: WindowCheckpoint) -> OutMessage:
        """The record of a window's progress."""
        return self._record(
            self.window_key(checkpoint.pull_id, checkpoint.window),
            checkpoint.model_dump_json().encode(),
        )

    async def save_window(self, checkpoint: WindowCheckpoint) -> None:
        """Queue a window's progress (acknowledged by `flush`)."""
        await self._write(
            self.window_key(checkpoint.pull_id, checkpoint.window),
            checkpoint.model_dump_json().encode(),
        )

    async def save_sync(self, sync: SyncState) -> None:
        """Record the module's last complete pull, and wait for Kafka."""
        await self._kafka.send_and_wait(
            self.topic, [self._record(self._scope, sync.model_dump_json().encode())]
        )

    async def flush(self) -> None:
        """Wait until every checkpoint record is acknowledged; if some were lost in an outage,
        write the latest record of every window again (retrying until the Kafka deadline)."""
        pending, self._pending = self._pending, []
        results = await asyncio.gather(*pending, return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            await self._kafka.send_and_wait(
                self.topic, [self._record(k, v) for k, v in self._latest.items()]
            )

    async def wait_for_plan(self, pull_id: str, timeout_s: float) -> StoredState:
        """Shards other than 0 wait for shard 0 to publish the plan (Kafka is the only link)."""
        deadline = time.monotonic() + timeout_s
        delay = 0.5
        while True:
            state = await self.load(pull_id)
            if state.plan is not None:
                return state
            if time.monotonic() + delay > deadline:
                raise ConfigError(
                    f"no plan for pull {pull_id} appeared within {timeout_s:.0f} s; "
                    "shard 0 plans the pull: is it running with the same --pull-id?"
                )
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 1.5)
