"""`ocpi-puller status`: what every recent pull is doing, read from the progress topic.

For operators who never see a job's terminal. Events are folded per pull and shard into one row:
state, objects so far against the reported total, rate, ETA, the last problem, and how long ago
the pull was last heard from. How the rows are shown (a table that fits, JSON or TSV lines,
`--follow`) is status_view.py's.

A pull stopped by a signal is `interrupted` (resumable); a running pull not heard from for three
heartbeats (`heartbeat_s` from its heartbeat events, else 30 s) is `stale`: its process is gone
without a word (killed, evicted, a lost node). Events this `status` does not know (a newer puller's)
still count as a sign of life.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel, ConfigDict, ValidationError

from producer.kafka.connection import KafkaConnection
from producer.kafka.consume import read_to_end, started_consumer, topic_partitions
from schemas.events import (
    Heartbeat,
    PageFetched,
    ProgressEvent,
    PullCompleted,
    PullFailed,
    PullStarted,
    RetryScheduled,
    Warning_,
    WindowCompleted,
    parse_progress_event,
)

STATUS_NUMERIC = frozenset({"objects", "total", "rate/s"})
State = Literal["running", "complete", "incomplete", "failed", "interrupted", "stale"]

DEFAULT_HEARTBEAT_S = 30.0  # a pull's heartbeat interval until one of its heartbeats says
STALE_AFTER_HEARTBEATS = 3


class OtherEvent(BaseModel):
    """The fields every progress event carries, read from an event of a type this `status` does
    not fold (a `heartbeat`, or a newer puller's event): enough to tell the pull is alive."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event: str
    pull_id: str
    partner: str
    module: str
    shard_index: int = 0
    shard_count: int = 1
    at: datetime
    heartbeat_s: float | None = None


@dataclass(slots=True)
class PullStatus:
    """One pull (one shard of it) as the progress topic tells it."""

    pull_id: str
    partner: str
    module: str
    shard: str
    state: State = "running"
    started_at: str | None = None
    last_event_at: str | None = None
    last_event: str | None = None
    objects_emitted: int = 0
    dead_lettered: int = 0
    total_reported: int | None = None
    rate_per_s: float | None = None
    eta_s: float | None = None
    windows_total: int | None = None
    # Windows that ended, by index (a window read again ends again; it is still one window).
    windows_ended: set[int] = field(default_factory=set)
    retries: int = 0
    last_problem: str | None = None
    duration_s: float | None = None
    heartbeat_s: float | None = None
    # Retries since the last start or end of a run: a run's discovery and planning retries come
    # before its `pull_started`, and count for it (as in its summary), not for the run before.
    retries_before_start: int = 0

    @property
    def windows_done(self) -> int:
        """Windows ended, never more than planned."""
        done = len(self.windows_ended)
        return done if self.windows_total is None else min(done, self.windows_total)

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the last event."""
        if self.last_event_at is None:
            return None
        return (now - datetime.fromisoformat(self.last_event_at)).total_seconds()

    def state_at(self, now: datetime) -> State:
        """The state, `stale` for a running pull silent for three heartbeats."""
        age = self.age_s(now)
        silence_s = STALE_AFTER_HEARTBEATS * (self.heartbeat_s or DEFAULT_HEARTBEAT_S)
        if self.state == "running" and age is not None and age > silence_s:
            return "stale"
        return self.state


Statuses = dict[tuple[str, str, str, int], PullStatus]


def fold(statuses: Statuses, event: ProgressEvent | OtherEvent) -> None:
    """Apply one progress event to the status of its pull."""
    key = (event.pull_id, event.partner, event.module, event.shard_index)
    status = statuses.get(key)
    if status is None:
        status = PullStatus(
            event.pull_id,
            event.partner,
            event.module,
            f"{event.shard_index + 1}/{event.shard_count}",
        )
        statuses[key] = status
    status.last_event_at = event.at.isoformat()
    status.last_event = event.event
    if isinstance(event, OtherEvent):
        if event.heartbeat_s is not None:
            status.heartbeat_s = event.heartbeat_s
    elif isinstance(event, Heartbeat):
        status.heartbeat_s = event.heartbeat_s
    elif isinstance(event, PullStarted):
        if not event.resumed and status.started_at is not None:
            # The same id run afresh (after `reset`): nothing of the voided run counts.
            status = statuses[key] = PullStatus(
                status.pull_id, status.partner, status.module, status.shard,
                last_event_at=status.last_event_at, last_event=status.last_event,
                heartbeat_s=status.heartbeat_s, retries=status.retries_before_start,
            )  # fmt: skip
        status.retries_before_start = 0
        status.state = "running"
        status.started_at = event.at.isoformat()
        status.total_reported = event.total_reported
        status.windows_total = event.windows_this_shard
    elif isinstance(event, PageFetched):
        status.objects_emitted = event.objects_emitted
        status.dead_lettered = event.dead_lettered
        status.rate_per_s = event.rate_per_s
        status.eta_s = event.eta_s
        if event.expected_total is not None:
            status.total_reported = event.expected_total
    elif isinstance(event, RetryScheduled):
        status.retries += 1
        status.retries_before_start += 1
        status.last_problem = f"retry: {event.reason}"
    elif isinstance(event, Warning_):
        status.last_problem = f"{event.code}: {event.message}"
    elif isinstance(event, WindowCompleted):
        status.windows_ended.add(event.window)
    elif isinstance(event, PullCompleted):
        status.retries_before_start = 0
        status.state = "complete" if event.complete else "incomplete"
        if event.complete and status.windows_total is not None:
            # Complete means every window is: those ended before a resume (or before the
            # events read) included.
            status.windows_ended = set(range(status.windows_total))
        status.objects_emitted = event.objects_emitted
        status.dead_lettered = event.dead_lettered
        status.duration_s = event.duration_s
        status.eta_s = None
    elif isinstance(event, PullFailed):
        status.retries_before_start = 0
        status.state = "interrupted" if event.reason == "interrupted" else "failed"
        status.last_problem = f"{event.reason}: {event.message}"
        status.duration_s = event.duration_s
        status.eta_s = None


class ProgressFollower:
    """Reads the progress topic from an instant on, and keeps the folded statuses."""

    def __init__(self, connection: KafkaConnection | str, topic: str, since: datetime) -> None:
        self._connection = connection
        self._topic = topic
        self._since_ms = int(since.timestamp() * 1000)
        self.statuses: Statuses = {}
        self.unreadable = 0
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> ProgressFollower:
        self._consumer = await started_consumer(self._connection)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def _apply(self, value: bytes | None) -> bool:
        event: ProgressEvent | OtherEvent
        try:
            event = parse_progress_event(value or b"")
        except ValidationError:
            try:
                event = OtherEvent.model_validate_json(value or b"")
            except ValidationError:
                self.unreadable += 1
                return False
        fold(self.statuses, event)
        return True

    async def catch_up(self) -> None:
        """Read every event since the instant, up to the topic's end now."""
        consumer = self._consumer
        assert consumer is not None, "use ProgressFollower as an async context manager"
        partitions = await topic_partitions(consumer, self._topic)
        async for record in read_to_end(consumer, partitions, from_timestamp_ms=self._since_ms):
            self._apply(record.value)

    async def poll(self, timeout_ms: int = 500) -> int:
        """Read what arrived since; returns how many events were applied. A topic created after
        reading started (no pull had run yet) is picked up here."""
        consumer = self._consumer
        assert consumer is not None, "use ProgressFollower as an async context manager"
        if not consumer.assignment():
            partitions = await topic_partitions(consumer, self._topic)
            if not partitions:
                await asyncio.sleep(timeout_ms / 1000)
                return 0
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
        applied = 0
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        for records in batches.values():
            applied += sum(self._apply(record.value) for record in records)
        return applied
