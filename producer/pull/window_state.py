"""One window's figures and position, as its checkpoints carry them.

The window loop (window.py) owns one per window reading; the delivery (at-least-once or
exactly-once) updates it as pages become durable and asks it for the checkpoint to record.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from producer.kafka.inventory import WrittenBefore
from producer.kafka.output import Marks
from producer.ocpi.paging.pagination import WindowWalk
from producer.ocpi.paging.walk import ChainLink
from producer.ocpi.planning.verdict import WindowVerdict
from producer.pull.counters import PullCounters
from producer.pull.records import PageMessages
from producer.pull.selection import WindowSelection
from producer.pull.verdict import AckMark
from schemas.records import WindowCheckpoint, WindowSpec


@dataclass(frozen=True, slots=True)
class CheckpointOwner:
    """Whose checkpoints these are: the pull, its partner and module, and its pinned end."""

    pull_id: str
    partner: str
    module: str
    pinned_date_to: datetime


class WindowState:
    """A window's own figures (objects written, dialects, keys listed twice, objects sent again),
    its acknowledgement history and its position: what its checkpoints say."""

    def __init__(
        self,
        owner: CheckpointOwner,
        spec: WindowSpec,
        resume: WindowCheckpoint | None,
        selection: WindowSelection,
        counters: PullCounters,
        *,
        written_before: WrittenBefore | None,
        stop_at: int | None,
        losses_seen: Callable[[], bool] = lambda: False,
    ) -> None:
        self._owner = owner
        # Whether Kafka has shown this run a loss of acknowledged writes: each checkpoint says
        # so, and a resume after a stop before they were written again reads everything again.
        self._losses_seen = losses_seen
        self.spec = spec
        self.selection = selection
        self._counters = counters
        # Re-reading a stretch after an outage, up to this offset: what it sends was sent before.
        self.stop_at = stop_at
        self.emitted = 0 if resume is None else resume.objects_emitted
        if written_before is not None:
            # What Kafka holds of this window (read back): exact, where the checkpoint may lag
            # behind acknowledgements a killed run never recorded, or be missing altogether
            # (killed before its first checkpoint: what it wrote is held, and never counted
            # as new again). A later resume compares Kafka with this count: counted from less
            # than Kafka held, a loss as large as the uncounted part would go unseen.
            self.emitted = len(written_before.window_keys.get(spec.index, ()))
        # This window's own figures, carried by its checkpoints (a resume goes on from them).
        self._dialects: Counter[str] = Counter({} if resume is None else resume.dialects)
        self._duplicates_before = 0 if resume is None else resume.duplicate_keys
        self.resent = 0 if resume is None else resume.resent_objects
        # Where Kafka said this window's records went, carried by its checkpoints: a resume
        # checks that Kafka still holds that far (pull/plan.py).
        self.written_through = {} if resume is None else dict(resume.written_through)
        start = ChainLink(-1, 0, None)
        if resume is not None:
            start = ChainLink(-1, resume.next_offset, resume.total_at_offset)
        self.ack_history: list[AckMark] = [
            AckMark(time.monotonic(), start.end, start.total, start.end)
        ]
        self._furthest_acked = start.end
        self._position = start  # the last checkpoint's position
        self.narrowed = False  # read in date pieces (an unstable order)

    @property
    def rereading(self) -> bool:
        """Re-reading a stretch after a broker outage (the window's own reading recorded it)."""
        return self.stop_at is not None

    def count_dialects(self, messages: PageMessages) -> None:
        """The dialects of records now durable: the pull's counts and the window's own."""
        counters = self._counters
        for dialect, count in messages.dialect_counts().items():
            counters.dialects[dialect.value] += count
            self._dialects[dialect.value] += count
            example = messages.examples.get(dialect)
            if example is not None:
                counters.dialect_examples.setdefault(dialect.value, example)

    def acknowledged(self, walk: WindowWalk, page_end: int, new: int, marks: Marks) -> None:
        """Kafka acknowledged a page ending at `page_end` (`new` keys written for the first
        time): remembered with where its records ended in Kafka."""
        self.emitted += new
        self._furthest_acked = max(self._furthest_acked, page_end)
        for (topic, partition), written in marks.items():
            name = f"{topic}:{partition}"
            self.written_through[name] = max(written.last, self.written_through.get(name, -1))
        position = walk.checkpoint
        self.ack_history.append(
            AckMark(time.monotonic(), position.end, position.total, self._furthest_acked, marks)
        )

    def checkpoint(
        self,
        walk: WindowWalk | None,
        *,
        done: bool,
        verdict: WindowVerdict | None = None,
        passes: int = 1,
    ) -> WindowCheckpoint:
        """Where the window is. A window read in date pieces has no position in one list: it
        goes on from its start (the objects Kafka has are not produced again)."""
        if walk is not None and not self.narrowed:
            self._position = walk.checkpoint
        position = ChainLink(-1, 0, None) if self.narrowed else self._position
        owner, spec = self._owner, self.spec
        return WindowCheckpoint(
            pull_id=owner.pull_id,
            partner=owner.partner,
            module=owner.module,
            window=spec.index,
            date_from=spec.date_from,
            date_to=spec.date_to,
            pinned_date_to=owner.pinned_date_to,
            next_offset=position.end,
            total_at_offset=position.total,
            done=done,
            complete=verdict is not None and verdict.complete,
            shortfall=0 if verdict is None else verdict.shortfall,
            passes=passes,
            objects_emitted=self.emitted,
            updated_at=datetime.now(UTC),
            dialects=dict(self._dialects),
            narrowed=self.narrowed,
            duplicate_keys=self._duplicates_before + self.selection.duplicate_keys,
            resent_objects=self.resent,
            written_through=dict(self.written_through),
            kafka_lost_writes=self._losses_seen(),
        )
