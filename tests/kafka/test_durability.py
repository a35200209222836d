"""AckedOffsets: which acknowledged writes Kafka lost, from reused offsets and end offsets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from producer.kafka.durability import AckedOffsets, LostWrites, Written, lost_in

P = ("t.tokens", 0)
Q = ("t.tokens", 1)


def ends(acked: AckedOffsets, end: int, at: float) -> None:
    acked.check_ends({P: end}, highest_asked=dict(acked.highest), asked_at=at)


def test_an_end_at_or_below_the_highest_acknowledged_offset_loses_from_that_end() -> None:
    acked = AckedOffsets()
    acked.acknowledged(P, 0, 100, at=1.0)
    ends(acked, 60, at=2.0)
    assert acked.lost_on(["t.tokens"]) == {P: (LostWrites(60, 2.0),)}
    assert acked.take_lost() == {P: (LostWrites(60, 2.0),)}
    assert acked.take_lost() == {}  # taken once


def test_an_end_past_every_acknowledged_offset_loses_nothing() -> None:
    acked = AckedOffsets()
    acked.acknowledged(P, 0, 100, at=1.0)
    ends(acked, 100, at=2.0)
    assert acked.lost_on(["t.tokens"]) == {}


def test_a_batch_acknowledged_while_the_ends_were_asked_is_not_lost() -> None:
    # Another partner's pull shares the producer: its batch is acknowledged after the question
    # left, so the answer cannot include it (the race that once failed a partners-file pull).
    acked = AckedOffsets()
    acked.acknowledged(P, 0, 100, at=1.0)
    asked = dict(acked.highest)
    acked.acknowledged(P, 100, 50, at=2.5)
    acked.check_ends({P: 100}, highest_asked=asked, asked_at=2.0)
    assert acked.lost_on(["t.tokens"]) == {}
    assert acked.highest[P] == 149


def test_after_a_loss_the_broker_goes_on_from_its_end_without_a_second_loss() -> None:
    acked = AckedOffsets()
    acked.acknowledged(P, 0, 100, at=1.0)
    ends(acked, 60, at=2.0)
    acked.acknowledged(P, 60, 40, at=3.0)  # written again: offsets from the end, no reuse
    acked.acknowledged(P, 100, 10, at=4.0)
    ends(acked, 110, at=5.0)
    assert acked.lost_on(["t.tokens"]) == {P: (LostWrites(60, 2.0),)}


def test_reused_offsets_lose_from_the_reused_base_once() -> None:
    acked = AckedOffsets()
    acked.acknowledged(P, 0, 100, at=1.0)
    acked.acknowledged(P, 40, 10, at=3.0)  # the broker came back from an earlier state
    acked.acknowledged(P, 50, 10, at=4.0)  # and goes on from there: no second loss
    assert acked.lost_on(["t.tokens"]) == {P: (LostWrites(40, 3.0),)}


def test_losses_are_kept_for_every_pull_and_never_merged() -> None:
    acked = AckedOffsets()
    acked.acknowledged(P, 0, 100, at=1.0)
    acked.acknowledged(P, 80, 10, at=3.0)
    ends(acked, 30, at=4.0)
    both = (LostWrites(80, 3.0), LostWrites(30, 4.0))
    assert acked.lost_on(["t.tokens"]) == {P: both}
    assert acked.lost_on(["t.tokens"]) == {P: both}  # asked again: still there
    assert acked.lost_on(["t.other"]) == {}
    assert acked.any_lost_on(["t.tokens"])
    assert not acked.any_lost_on(["t.other"])


def test_a_page_is_lost_only_if_acknowledged_on_that_partition_before_the_loss() -> None:
    lost = {P: (LostWrites(50, 10.0),)}
    assert lost_in({P: Written(60, 9.0)}, lost)
    assert not lost_in({P: Written(49, 9.0)}, lost)  # ended before the lost offsets
    assert not lost_in({P: Written(60, 11.0)}, lost)  # written after the loss was seen: kept
    assert not lost_in({Q: Written(60, 9.0)}, lost)
    # Its records on P were acknowledged before the loss, those on Q long after: the page was
    # acknowledged after the loss was seen, and is lost all the same.
    assert lost_in({P: Written(60, 9.0), Q: Written(5, 30.0)}, lost)


def test_written_merges_to_the_furthest_offset_and_the_earliest_acknowledgement() -> None:
    assert Written(10, 5.0).merged(Written(20, 7.0)) == Written(20, 5.0)


@given(
    batches=st.lists(st.integers(1, 20), min_size=1, max_size=30),
    asked_after=st.integers(0, 30),
    kept=st.integers(0, 600),
)
def test_only_writes_acknowledged_before_asking_and_not_kept_are_lost(
    batches: list[int], asked_after: int, kept: int
) -> None:
    """A broker that keeps the first `kept` offsets; the ends are asked after `asked_after`
    batches and answered after all of them. Exactly the batches acknowledged before asking that
    end at an offset of `kept` or more are found lost."""
    acked = AckedOffsets()
    offset, asked, asked_at = 0, dict[tuple[str, int], int](), float(len(batches))
    written: list[Written] = []
    for n, count in enumerate(batches):
        if n == asked_after:
            asked, asked_at = dict(acked.highest), n - 0.5
        acked.acknowledged(P, offset, count, at=float(n))
        offset += count
        written.append(Written(offset - 1, float(n)))
    if asked_after >= len(batches):
        asked = dict(acked.highest)
    end = min(kept, offset)
    acked.check_ends({P: end}, highest_asked=asked, asked_at=asked_at)
    lost = acked.lost_on(["t.tokens"])
    for batch in written:
        expected = batch.at < asked_at and batch.last >= end
        assert lost_in({P: batch}, lost) == expected
