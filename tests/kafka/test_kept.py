"""`KeptWrites`: an outage is cleared only when the same producer was acknowledged again, after
it, on every partition acknowledged within the replay window before it (pure)."""

from __future__ import annotations

from producer.kafka.kept import KeptWrites

A, B = ("t", 0), ("t", 1)


def test_acknowledged_again_by_the_same_producer_on_every_suspect_partition_clears() -> None:
    kept = KeptWrites()
    kept.acknowledged(A, 0, 9.0)
    kept.acknowledged(B, 0, 9.5)
    kept.outage(10.0, 0)
    kept.acknowledged(A, 0, 12.0)
    assert kept.unproven([10.0], 5.0) == [10.0]  # B not yet shown
    kept.acknowledged(B, 0, 12.5)
    assert kept.unproven([10.0], 5.0) == []


def test_a_new_producer_proves_nothing() -> None:
    kept = KeptWrites()
    kept.acknowledged(A, 0, 9.0)
    kept.outage(10.0, 0)
    kept.acknowledged(A, 1, 12.0)  # renewed: the broker lost the producer's identity
    assert kept.unproven([10.0], 5.0) == [10.0]


def test_partitions_acknowledged_before_the_window_are_not_suspect() -> None:
    kept = KeptWrites()
    kept.acknowledged(A, 0, 1.0)
    kept.acknowledged(B, 0, 9.0)
    kept.outage(10.0, 0)
    kept.acknowledged(B, 0, 11.0)
    assert kept.unproven([10.0], 5.0) == []
    assert kept.unproven([10.0], 10.0) == [10.0]  # with a longer window A is suspect too


def test_an_outage_with_nothing_acknowledged_before_is_cleared_and_an_unknown_one_is_not() -> None:
    kept = KeptWrites()
    kept.outage(10.0, 0)
    assert kept.unproven([10.0], 5.0) == []
    assert kept.unproven([42.0], 5.0) == [42.0]
