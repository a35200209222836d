"""Checkpoints under exactly-once delivery: written inside the commit units, read committed.

The plan goes into the first unit (a process killed before its first commit leaves no plan, so
the same command starts the pull afresh), each window's progress into the unit holding the pages
it covers, the sync state into a last unit of its own. Reads wait for the transactions open when
they start (see committed.py), so a resume sees every checkpoint its predecessor committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from producer.kafka.checkpoints import CheckpointStore
from producer.kafka.committed import read_committed
from producer.kafka.committer import UnitCommitter
from producer.kafka.output import KafkaOutput
from schemas.records import PullPlan, SyncState, WindowCheckpoint


class CommittedCheckpoints(CheckpointStore):
    """A `CheckpointStore` whose writes travel in the pull's transactions."""

    def __init__(
        self,
        kafka: KafkaOutput,
        topic: str,
        partner: str,
        module: str,
        committer: UnitCommitter,
        *,
        read_deadline_s: float,
    ) -> None:
        super().__init__(kafka, topic, partner, module)
        self._committer = committer
        self._read_deadline_s = read_deadline_s

    async def _read(self, partition: int) -> AsyncIterator[Any]:
        async for record in read_committed(
            self._kafka.connection,
            self.topic,
            partitions=[partition],
            deadline_s=self._read_deadline_s,
        ):
            yield record

    async def save_plan(self, plan: PullPlan) -> None:
        """The plan, committed with the next unit."""
        record = self._record(self.plan_key(plan.pull_id), plan.model_dump_json().encode())
        self._committer.put(self.topic, record)

    async def save_window(self, checkpoint: WindowCheckpoint) -> None:
        """A window's progress, committed with the next unit."""
        self._committer.put(self.topic, self.window_record(checkpoint))

    async def save_sync(self, sync: SyncState) -> None:
        """The module's last complete pull, committed now."""
        self._committer.put(self.topic, self._record(self._scope, sync.model_dump_json().encode()))
        await self._committer.flush()

    async def flush(self) -> None:
        """Commit what is open."""
        await self._committer.flush()
