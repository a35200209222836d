"""What Kafka acknowledged, by offset, and whether it still holds it. Pure.

An acknowledgement says a broker wrote a batch at some offsets. A broker can lose what it
acknowledged (noida-db does, for writes it answers while shutting down; a single-replica Kafka can
on a crash). Two things show it, and nothing else does: a later acknowledgement on the same
partition at an offset this process was already given (the broker came back from an earlier
state and reused the offsets), and a partition whose end offset, read at the end of the pull, is
not past the highest offset acknowledged to it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

TopicPartitionKey = tuple[str, int]


class Written(NamedTuple):
    """Where records ended on one partition, and when Kafka acknowledged them (monotonic: the
    earliest acknowledgement, when they took several batches)."""

    last: int
    at: float

    def merged(self, other: Written) -> Written:
        return Written(max(self.last, other.last), min(self.at, other.at))


@dataclass(frozen=True, slots=True)
class LostWrites:
    """On one partition, every write acknowledged before `noticed` (monotonic) at an offset of
    `first_offset` or more is gone."""

    first_offset: int
    noticed: float


Losses = dict[TopicPartitionKey, tuple["LostWrites", ...]]


@dataclass(slots=True)
class AckedOffsets:
    """The highest offset acknowledged per partition, and the writes shown lost.

    Losses are kept, never merged: the pulls of a partners file share one producer, so a loss
    found by one pull may be another's writes; each pull checks its own pages against them."""

    highest: dict[TopicPartitionKey, int] = field(default_factory=dict)
    losses: dict[TopicPartitionKey, list[LostWrites]] = field(default_factory=dict)

    def acknowledged(self, partition: TopicPartitionKey, base: int, count: int, at: float) -> None:
        """A batch of `count` records written at `base` on `partition`, acknowledged `at`."""
        if count <= 0 or base < 0:
            return
        high = self.highest.get(partition, -1)
        if base <= high:
            self._lose(partition, base, at)  # offsets reused: the broker forgot what it gave
            high = -1  # and it goes on from here: what follows is no reuse
        self.highest[partition] = max(high, base + count - 1)

    def check_ends(
        self,
        ends: Mapping[TopicPartitionKey, int],
        *,
        highest_asked: Mapping[TopicPartitionKey, int],
        asked_at: float,
    ) -> None:
        """The partitions' end offsets, asked `asked_at` when the highest acknowledged offsets
        were `highest_asked` (taken before asking: a batch acknowledged while the question was
        under way may lie past the answer and is not lost). An end not past the highest offset
        acknowledged before asking lost the writes from that end on."""
        for partition, end in ends.items():
            asked = highest_asked.get(partition, -1)
            if end <= asked:
                self._lose(partition, end, asked_at)
                if self.highest.get(partition) == asked:
                    self.highest[partition] = end - 1  # the broker goes on from its end

    def _lose(self, partition: TopicPartitionKey, first_offset: int, at: float) -> None:
        loss = LostWrites(first_offset, at)
        known = self.losses.setdefault(partition, [])
        if loss not in known:
            known.append(loss)

    def lost_on(self, topics: Collection[str]) -> Losses:
        """Every loss shown on `topics` so far (kept for the other pulls that wrote there)."""
        return {p: tuple(gone) for p, gone in self.losses.items() if p[0] in topics}

    def any_lost_on(self, topics: Collection[str]) -> bool:
        """Whether a loss was shown on `topics` (asked at every checkpoint: nothing is built)."""
        return any(topic in topics for topic, _ in self.losses)

    def take_lost(self) -> Losses:
        """The losses shown since last taken, forgotten here (for a sole owner of the writes,
        who writes them again)."""
        lost, self.losses = self.losses, {}
        return {p: tuple(gone) for p, gone in lost.items()}


def lost_in(
    marks: Mapping[TopicPartitionKey, Written],
    lost: Mapping[TopicPartitionKey, Sequence[LostWrites]],
) -> bool:
    """Whether a page whose records were written at `marks` has records among the lost writes.
    The acknowledgement on each partition counts, not the page's: a page is acknowledged when
    its last partition is, maybe after a loss its first partition's records were part of."""
    for partition, written in marks.items():
        for gone in lost.get(partition, ()):
            if written.last >= gone.first_offset and written.at < gone.noticed:
                return True
    return False
