"""A window's count of what it wrote (`WindowState.emitted`): where a resume starts it.

A resume compares what Kafka holds of each window with the count its checkpoint carries, and
reads a window again when Kafka holds less (the broker lost acknowledged writes). The count
must therefore start from everything Kafka already holds of the window: a window a killed run
wrote to before its first checkpoint starts from those objects too, never from 0 (they are not
produced again, so they would never be counted, and a later loss as large would go unseen).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producer.kafka.durability import Written
from producer.kafka.inventory import WrittenBefore
from producer.ocpi.paging.pagination import WindowWalk
from producer.pull.counters import PullCounters
from producer.pull.plan import acknowledged_through
from producer.pull.selection import WindowSelection
from producer.pull.window_state import CheckpointOwner, WindowState
from schemas.records import WindowCheckpoint, WindowSpec

DATE_TO = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = WindowSpec(index=3, date_from=None, date_to=DATE_TO, expected=1_000)
OWNER = CheckpointOwner("p", "sbx", "tokens", DATE_TO)


def state(resume: WindowCheckpoint | None, written: WrittenBefore | None) -> WindowState:
    selection = WindowSelection(None, DATE_TO, written_before=written)
    return WindowState(
        OWNER, SPEC, resume, selection, PullCounters(), written_before=written, stop_at=None
    )


def checkpoint(emitted: int) -> WindowCheckpoint:
    return WindowCheckpoint(
        pull_id="p",
        partner="sbx",
        module="tokens",
        window=3,
        date_from=None,
        date_to=DATE_TO,
        pinned_date_to=DATE_TO,
        next_offset=500,
        total_at_offset=1_000,
        objects_emitted=emitted,
        done=False,
        updated_at=DATE_TO,
    )


HELD = WrittenBefore(window_keys={3: set(range(700)), 4: set(range(9))})


@pytest.mark.parametrize(
    ("resume", "written", "expected"),
    [
        (None, None, 0),  # a fresh pull
        (checkpoint(500), None, 500),  # no read-back (not resumed): the checkpoint's count
        (checkpoint(500), HELD, 700),  # a checkpoint behind what Kafka holds
        (None, HELD, 700),  # killed before its first checkpoint: what it wrote counts
        (None, WrittenBefore(), 0),  # resumed, nothing of this window in Kafka
    ],
)
def test_a_window_counts_from_what_kafka_holds_of_it(
    resume: WindowCheckpoint | None, written: WrittenBefore | None, expected: int
) -> None:
    assert state(resume, written).emitted == expected


def test_the_offsets_acknowledged_ride_on_every_checkpoint_and_grow() -> None:
    """Where Kafka said the window's pages went: carried from the checkpoint resumed, raised by
    each acknowledged page, on each checkpoint (a later resume compares them with Kafka's ends)."""
    resumed = checkpoint(500).model_copy(update={"written_through": {"t.tokens:0": 40}})
    window = state(resumed, None)
    assert window.checkpoint(None, done=False).written_through == {"t.tokens:0": 40}
    walk = WindowWalk(max_ahead=1)
    window.acknowledged(walk, 100, 10, {("t.tokens", 0): Written(90, 1.0)})
    window.acknowledged(walk, 200, 10, {("t.tokens", 1): Written(7, 2.0)})
    window.acknowledged(walk, 300, 10, {("t.tokens", 0): Written(60, 3.0)})
    assert window.checkpoint(None, done=False).written_through == {
        "t.tokens:0": 90,
        "t.tokens:1": 7,
    }


def test_the_offsets_acknowledged_per_partition_over_the_checkpoints_of_the_pull() -> None:
    first = checkpoint(1).model_copy(
        update={"written_through": {"t.tokens:0": 40, "t.tokens:1": 3, "other:0": 99}}
    )
    second = checkpoint(1).model_copy(
        update={"written_through": {"t.tokens:0": 12, "t.tokens.dead:2": 5, "garbage": 1}}
    )
    assert acknowledged_through([first, second], ("t.tokens", "t.tokens.dead")) == {
        ("t.tokens", 0): 40,
        ("t.tokens", 1): 3,
        ("t.tokens.dead", 2): 5,
    }


def test_each_checkpoint_says_whether_kafka_has_shown_the_run_a_loss() -> None:
    seen = {"lost": False}
    selection = WindowSelection(None, DATE_TO, written_before=None)
    window = WindowState(
        OWNER, SPEC, None, selection, PullCounters(), written_before=None, stop_at=None,
        losses_seen=lambda: seen["lost"],
    )  # fmt: skip
    assert not window.checkpoint(None, done=False).kafka_lost_writes
    seen["lost"] = True
    assert window.checkpoint(None, done=False).kafka_lost_writes
    # A resume starts from what Kafka holds, not from an earlier run's knowledge.
    assert (
        not state(window.checkpoint(None, done=False), None)
        .checkpoint(None, done=False)
        .kafka_lost_writes
    )
