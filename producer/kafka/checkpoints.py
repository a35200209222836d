"""Resume state on the compacted `<prefix>.checkpoints` topic.

Keys (all of one partner module land on one partition, chosen from `<partner>/<module>`, so a
resume reads a single partition):
* `<partner>/<module>/<pull_id>`: the pull's plan (pinned date_to, windows);
* `<partner>/<module>/<pull_id>/window/<index>`: how far each window got;
* `<partner>/<module>`: the last complete pull (where `--incremental` starts).

`reset` voids a pull: tombstones for its window keys, then a `PullReset` under its plan's key;
`load` then finds no plan and no windows, so the same pull id starts afresh.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from pydantic import ValidationError

from producer.errors import ConfigError
from producer.kafka.connection import KafkaConnection
from producer.kafka.consume import read_to_end, read_topic, started_consumer
from producer.kafka.output import KafkaOutput, Marks
from producer.kafka.partitioning import partition_for
from producer.kafka.records import OutMessage
from producer.retry import RetryPolicy
from schemas.records import (
    CheckpointRecord,
    PullPlan,
    PullReset,
    SyncState,
    WindowCheckpoint,
    parse_checkpoint_record,
)

log = logging.getLogger("ocpi_puller")

# Shards other than 0 look for shard 0's plan again and again, ever less often (no jitter: one
# read per look), until `--plan-wait-s`.
PLAN_WAIT = RetryPolicy(base_delay_s=0.5, max_delay_s=5.0, growth=1.5, jitter=False)


@dataclass(slots=True)
class StoredState:
    """What the checkpoints topic holds for one partner module (and one pull)."""

    plan: PullPlan | None = None
    windows: dict[int, WindowCheckpoint] = field(default_factory=dict)
    sync: SyncState | None = None
    reset: PullReset | None = None  # the pull was reset, and not planned again since
    # The last reset of this pull id, planned again since or not: what was written before it
    # belongs to a voided run.
    reset_at: datetime | None = None

    def apply(self, key: bytes, kind: str, record: CheckpointRecord | None) -> None:
        """One record (None: a tombstone) under a plan, window or sync key, in topic order."""
        if kind == "window":
            if isinstance(record, WindowCheckpoint):
                self.windows[record.window] = record
            elif record is None:
                self.windows.pop(int(key.rsplit(b"/", 1)[1]), None)
        elif kind == "sync":
            self.sync = record if isinstance(record, SyncState) else None
        elif isinstance(record, PullReset):
            # Windows written before the reset belong to the voided plan.
            self.plan, self.reset, self.reset_at = None, record, record.reset_at
            self.windows.clear()
        else:
            self.plan = record if isinstance(record, PullPlan) else None
            self.reset = None

    def settle(self) -> None:
        """Drop windows of another plan (written by a run that outlived a reset of its id)."""
        if self.plan is not None:
            pinned = self.plan.date_to
            self.windows = {i: c for i, c in self.windows.items() if c.pinned_date_to == pinned}


@dataclass(slots=True)
class StoredPull:
    """One partner module's records of a pull id (as `find_pull` reads them)."""

    partner: str
    module: str
    state: StoredState


def key_kind(key: bytes, pull_id: bytes) -> tuple[bytes, str] | None:
    """`(scope, "plan" | "window")` when `key` is one of `pull_id`'s keys, else None."""
    parts = key.split(b"/")
    if len(parts) == 3 and parts[2] == pull_id:
        return b"/".join(parts[:2]), "plan"
    if len(parts) == 5 and parts[2] == pull_id and parts[3] == b"window":
        return b"/".join(parts[:2]), "window"
    return None


def _parsed(key: bytes, value: bytes | None) -> tuple[bool, CheckpointRecord | None]:
    """(readable, record); a tombstone is readable and None."""
    if value is None:
        return True, None
    try:
        return True, parse_checkpoint_record(value)
    except ValidationError:
        log.warning("ignoring an unreadable checkpoint record under %r", key)
        return False, None


async def find_pull(connection: KafkaConnection, topic: str, pull_id: str) -> list[StoredPull]:
    """Every partner module with records of `pull_id` on the checkpoints topic (read only; a
    `--partners` pull shares one id across partners and modules)."""
    states: dict[bytes, StoredState] = {}
    wanted = pull_id.encode()
    async for message in read_topic(connection, topic):
        found = None if message.key is None else key_kind(message.key, wanted)
        if found is None:
            continue
        readable, record = _parsed(message.key, message.value)
        if readable:
            states.setdefault(found[0], StoredState()).apply(message.key, found[1], record)
    pulls = []
    for scope, state in sorted(states.items()):
        state.settle()
        partner, module = scope.decode().split("/")
        pulls.append(StoredPull(partner, module, state))
    return pulls


async def find_sync(
    connection: KafkaConnection, topic: str, partner: str, module: str
) -> SyncState | None:
    """The module's last complete pull (where `--incremental` starts), read only."""
    state = StoredState()
    scope = f"{partner}/{module}".encode()
    async for message in read_topic(connection, topic):
        if message.key == scope:
            readable, record = _parsed(message.key, message.value)
            if readable:
                state.apply(message.key, "sync", record)
    return state.sync


class CheckpointStore:
    """Reads and writes one partner module's checkpoint records."""

    def __init__(self, kafka: KafkaOutput, topic: str, partner: str, module: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self.partner, self.module = partner, module
        self._scope = f"{partner}/{module}"
        self._pending: list[asyncio.Future[Marks]] = []
        # The latest record per key, re-sent by flush() if an outage swallowed any of them.
        self._latest: dict[str, bytes] = {}
        self._rng = random.Random()  # unused by PLAN_WAIT (no jitter), asked for by the policy

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
            if key == sync_key:
                kind = "sync"
            elif key == plan_key:
                kind = "plan"
            elif window_prefix is not None and key is not None and key.startswith(window_prefix):
                kind = "window"
            else:
                continue
            readable, record = _parsed(key, message.value)
            if readable:
                state.apply(key, kind, record)
        state.settle()
        return state

    async def _read(self, partition: int) -> AsyncIterator[Any]:
        """Every record of the partition, to its end when the read starts (read_uncommitted:
        the exactly-once store reads committed records only)."""
        consumer = await started_consumer(self._kafka.connection)
        try:
            async for message in read_to_end(consumer, [TopicPartition(self.topic, partition)]):
                yield message
        finally:
            await consumer.stop()

    def _record(self, key: str, value: bytes | None) -> OutMessage:
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

    async def reset(self, pull_id: str, state: StoredState) -> PullReset:
        """Void a pull (tombstones for its windows, then a `PullReset` under its plan's key) and
        wait for Kafka: the next pull with this id plans afresh."""
        indexes = set(state.windows)
        if state.plan is not None:
            indexes.update(w.index for w in state.plan.windows)
        reset = PullReset(
            pull_id=pull_id,
            partner=self.partner,
            module=self.module,
            reset_at=datetime.now(UTC),
            windows_cleared=len(indexes),
            plan_date_to=None if state.plan is None else state.plan.date_to,
            plan_completed=state.plan is not None and state.plan.completed,
        )
        records = [self._record(self.window_key(pull_id, i), None) for i in sorted(indexes)]
        records.append(self._record(self.plan_key(pull_id), reset.model_dump_json().encode()))
        # One partition, in this order: no reader sees the reset before the tombstones.
        await self._kafka.send_and_wait(self.topic, records)
        return reset

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
        looked = 0
        while True:
            state = await self.load(pull_id)
            looked += 1
            if state.plan is not None:
                return state
            wait = PLAN_WAIT.next_wait(looked, self._rng, now=time.monotonic(), deadline=deadline)
            if wait is None:
                raise ConfigError(
                    f"no plan for pull {pull_id} appeared within {timeout_s:.0f} s; "
                    "shard 0 plans the pull: is it running with the same --pull-id?"
                )
            await asyncio.sleep(wait)
