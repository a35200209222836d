"""What Kafka acknowledged, by offset, and whether it still holds it. Pure.

An acknowledgement says a broker wrote a batch at some offsets. A broker can lose what it
acknowledged (noida-db does, for writes it answers while shutting down; a single-replica Kafka can
on a crash). Two things show it, and nothing else does: a later acknowledgement on the same
partition at an offset this process was already given (the broker came back from an earlier
state and reused the offsets), and a partition whose end offset, read at the end of the pull, is
not past the highest offset acknowledged to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LostWrites:
    """On one partition, every write acknowledged before `noticed` (monotonic) at an offset of
    `first_offset` or more is gone."""

    first_offset: int
    noticed: float


@dataclass(slots=True)
class AckedOffsets:
    """The highest offset acknowledged per partition, and the writes shown lost."""

    highest: dict[TopicPartitionKey, int] = field(default_factory=dict)
    lost: dict[TopicPartitionKey, LostWrites] = field(default_factory=dict)

    def acknowledged(self, partition: TopicPartitionKey, base: int, count: int, at: float) -> None:
        """A batch of `count` records written at `base` on `partition`, acknowledged `at`."""
        if count <= 0 or base < 0:
            return
        high = self.highest.get(partition, -1)
        if base <= high:
            self._lose(partition, base, at)  # offsets reused: the broker forgot what it gave
        self.highest[partition] = max(high, base + count - 1)

    def check_ends(self, ends: Mapping[TopicPartitionKey, int], at: float) -> None:
        """The partitions' end offsets now: one not past its highest acknowledged offset lost
        the writes from that end on."""
        for partition, end in ends.items():
            if end <= self.highest.get(partition, -1):
                self._lose(partition, end, at)

    def _lose(self, partition: TopicPartitionKey, first_offset: int, at: float) -> None:
        known = self.lost.get(partition)
        if known is None:
            self.lost[partition] = LostWrites(first_offset, at)
        else:  # a second loss: cover both (writing again more than was lost costs only time)
            self.lost[partition] = LostWrites(
                min(first_offset, known.first_offset), max(at, known.noticed)
            )

    def take_lost(self) -> dict[TopicPartitionKey, LostWrites]:
        """The losses shown so far (forgotten here: whoever takes them writes them again)."""
        lost, self.lost = self.lost, {}
        return lost


def lost_in(
    marks: Mapping[TopicPartitionKey, int],
    acked_at: float,
    lost: Mapping[TopicPartitionKey, LostWrites],
) -> bool:
    """Whether a page whose records ended at `marks` (partition → its last offset there),
    acknowledged `acked_at`, has records among the lost writes."""
    for partition, last in marks.items():
        gone = lost.get(partition)
        if gone is not None and last >= gone.first_offset and acked_at < gone.noticed:
            return True
    return False
