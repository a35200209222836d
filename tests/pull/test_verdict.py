"""The verdicts, pure: one window's completeness (`producer.ocpi.verdict`), the pull's
(`producer.pull.verdict.judge_pull`), and what to re-read after a broker outage (`replay_stretch`).
"""

from __future__ import annotations

import pytest

from producer.pull.verdict import Replay, replay_stretch

def test_replay_stretch_ends_at_the_furthest_page_acknowledged() -> None:
    # Fan-out: the page ending at 900 was acknowledged while the checkpoint waited at 300.
    history = ((80.0, 0, None, 0), (94.0, 300, 3000, 900), (99.0, 300, 3000, 1200))
    assert replay_stretch(history, [96.0], 5.0) == Replay(0, None, 900)


@pytest.mark.parametrize(
    ("outages", "expected"),
    [
        ([], None),
        # Noticed at 100: suspect from 95 (position 300) up to what was acked by 100 (600).
        ([100.0], Replay(300, 3000, 600)),
        ([97.0], Replay(100, 3000, 300)),  # suspect from 92 (100) to 97 (300)
        ([91.0], Replay(0, None, 100)),  # suspect from 86: only the start was acked by then
        ([50.0], None),  # nothing was acknowledged in the suspect time
        ([200.0], None),  # the window finished long before the outage
        ([100.0, 91.0], Replay(0, None, 600)),  # the union of both stretches
    ],
)
def test_replay_stretch(outages: list[float], expected: Replay | None) -> None:
    history = (
        (80.0, 0, None, 0),
        (90.0, 100, 3000, 100),
        (94.0, 300, 3000, 300),
        (99.0, 600, 2998, 600),
    )
    assert replay_stretch(history, outages, 5.0) == expected
    assert replay_stretch(history, outages, 0.0) is None
