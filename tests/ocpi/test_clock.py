"""The partner's clock against ours (producer/ocpi/http/clock.py): bounds from answer timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from producer.ocpi.http.clock import PartnerClock

NOW = 1_700_000_000.0


def test_no_answer_no_estimate() -> None:
    assert PartnerClock().estimate is None


def test_a_lagging_clock_is_bounded_by_its_answers() -> None:
    clock = PartnerClock()
    # Stamped 120 s behind, whole seconds, each answer within 0.2 s of its request.
    for i in range(5):
        sent = NOW + i
        clock.heard(sent - 120, 1.0, sent, sent + 0.2)
    estimate = clock.estimate
    assert estimate is not None
    assert estimate.low_s is not None
    assert estimate.high_s is not None
    assert -120.3 <= estimate.low_s <= estimate.skew_s <= estimate.high_s <= -119.0
    assert estimate.notable
    assert 119 <= estimate.behind_s <= 120.3
    assert estimate.describe().endswith("behind ours")


def test_a_clock_ahead_is_not_behind() -> None:
    clock = PartnerClock()
    clock.heard(NOW + 30, 1.0, NOW, NOW + 0.1)
    estimate = clock.estimate
    assert estimate is not None
    assert estimate.behind_s == 0.0
    assert estimate.describe().endswith("ahead of ours")


def test_a_synchronised_clock_is_not_notable() -> None:
    clock = PartnerClock()
    clock.heard_answer("2023-11-14T22:13:20Z", "Tue, 14 Nov 2023 22:13:20 GMT", NOW, NOW + 0.3)
    estimate = clock.estimate
    assert estimate is not None
    assert not estimate.notable
    assert estimate.behind_s == 0.0


def test_a_source_whose_answers_disagree_is_not_believed() -> None:
    clock = PartnerClock()
    clock.heard(NOW - 100, 0.001, NOW, NOW + 0.1)
    clock.heard(NOW + 1 + 100, 0.001, NOW + 1, NOW + 1.1)  # a jump: no skew fits both
    assert clock.estimate is None
    assert clock.inconsistent == ["date"]


def test_a_fixed_envelope_timestamp_gives_way_to_the_date_header() -> None:
    """A partner whose envelope always says the same instant (a copied example, a cache): its
    Date header, the server's own clock, is believed."""
    clock = PartnerClock()
    for i in range(3):
        sent = NOW + 2 * i
        date = datetime.fromtimestamp(sent, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        clock.heard_answer("2015-06-29T20:39:09Z", date, sent, sent + 0.1)
    estimate = clock.estimate
    assert estimate is not None
    assert estimate.source == "date"
    assert not estimate.notable
    assert "timestamp" in clock.inconsistent


def test_a_skew_of_hours_is_not_a_clock_and_never_moves_the_pin() -> None:
    clock = PartnerClock()
    clock.heard(NOW - 3600, 1.0, NOW, NOW + 0.1)
    estimate = clock.estimate
    assert estimate is not None
    assert estimate.notable
    assert not estimate.credible
    assert estimate.behind_s == 0.0


def test_unreadable_times_are_ignored() -> None:
    clock = PartnerClock()
    clock.heard_answer(None, None, NOW, NOW + 0.1)
    clock.heard_answer("yesterday", "not a date", NOW, NOW + 0.1)
    assert clock.estimate is None


@given(
    skew=st.floats(-3600, 3600),
    delays=st.lists(st.tuples(st.floats(0, 2), st.floats(0, 1)), min_size=1, max_size=20),
)
def test_the_bounds_always_hold_the_true_skew(
    skew: float, delays: list[tuple[float, float]]
) -> None:
    """Whatever the network delays, a partner stamping its own (skewed) time truncated to the
    second, between request and answer, gives bounds that hold the true skew."""
    clock = PartnerClock()
    at = NOW
    for before, after in delays:
        sent = at
        stamped_ours = sent + before
        received = stamped_ours + after
        partner = stamped_ours + skew
        clock.heard(float(int(partner)), 1.0, sent, received)
        at = received + 1
    estimate = clock.estimate
    assert estimate is not None
    assert estimate.low_s is not None
    assert estimate.high_s is not None
    assert estimate.low_s - 1e-6 <= skew <= estimate.high_s + 1e-6
