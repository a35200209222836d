"""Request pacing (producer/ratelimit.py): the bucket's arithmetic and the gate's reactions.

The bucket is pure (time passed in), so its rate bound is a hypothesis property. The gate reads
`time.monotonic` and sleeps with `asyncio.sleep`; the tests swap both for a fake clock inside
the module only (the event loop keeps the real ones), so hours of pacing run in milliseconds.
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.ocpi.http import ratelimit
from producer.ocpi.http.ratelimit import RequestGate, TokenBucket

# --- TokenBucket -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("burst", "expected"), [(0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (2.5, 2.5), (10.0, 10.0)]
)
def test_full_bucket_holds_at_least_one_token(burst: float, expected: float) -> None:
    bucket = TokenBucket.full(5.0, burst, now=7.0)
    assert (bucket.burst, bucket.tokens, bucket.updated_at) == (expected, expected, 7.0)


def test_unlimited_bucket_never_waits() -> None:
    bucket = TokenBucket.full(None, 1.0, now=0.0)
    assert all(bucket.delay_for_one(0.0) == 0.0 for _ in range(10_000))


@pytest.mark.parametrize(
    ("rate", "burst", "times", "delays"),
    [
        # A burst of 2 at 2/s: two free, then one every half second.
        (2.0, 2.0, [0, 0, 0, 0], [0, 0, 0.5, 1.0]),
        # Burst 1: strictly spaced.
        (4.0, 1.0, [0, 0, 0], [0, 0.25, 0.5]),
        # Requests that arrive slower than the rate never wait.
        (1.0, 1.0, [0, 1, 2, 3], [0, 0, 0, 0]),
        # Arriving half way through the wait: wait only the rest.
        (1.0, 1.0, [0, 0, 0.5], [0, 1.0, 1.5]),
        # A long idle refills only up to the burst.
        (1.0, 2.0, [0, 0, 1000, 1000, 1000], [0, 0, 0, 0, 1.0]),
        # A fractional burst gives a fractional head start.
        (1.0, 1.5, [0, 0, 0], [0, 0.5, 1.5]),
    ],
)
def test_delay_for_one_table(
    rate: float, burst: float, times: list[float], delays: list[float]
) -> None:
    bucket = TokenBucket.full(rate, burst, now=0.0)
    assert [bucket.delay_for_one(t) for t in times] == pytest.approx(delays)


@pytest.mark.parametrize(("rate", "burst", "count"), [(10.0, 10.0, 100), (0.5, 3.0, 7)])
def test_a_burst_of_n_ends_exactly_when_the_rate_allows(
    rate: float, burst: float, count: int
) -> None:
    bucket = TokenBucket.full(rate, burst, now=0.0)
    delays = [bucket.delay_for_one(0.0) for _ in range(count)]
    assert delays[-1] == pytest.approx(max(0.0, (count - burst) / rate))


rates = st.floats(0.01, 1000.0)
bursts = st.floats(0.0, 50.0)
gaps = st.lists(st.floats(0.0, 3.0) | st.just(0.0), min_size=1, max_size=60)


def release_times(bucket: TokenBucket, arrivals: list[float]) -> list[float]:
    return [now + bucket.delay_for_one(now) for now in arrivals]


def arrivals_from(gap_list: list[float]) -> list[float]:
    return [sum(gap_list[: i + 1]) for i in range(len(gap_list))]


@settings(max_examples=200, deadline=None)
@given(rates, bursts, gaps)
def test_rate_bound_holds_over_every_interval(rate: float, burst: float, gap_list: list) -> None:
    bucket = TokenBucket.full(rate, burst, now=0.0)
    sends = release_times(bucket, arrivals_from(gap_list))
    allowed_burst = max(1.0, burst)
    for i in range(len(sends)):
        for j in range(i, len(sends)):
            span = sends[j] - sends[i]
            assert j - i + 1 <= allowed_burst + rate * span + 1e-6 * (1 + rate * span)


@settings(max_examples=200, deadline=None)
@given(rates, bursts, gaps)
def test_requests_are_released_in_arrival_order_never_early(
    rate: float, burst: float, gap_list: list
) -> None:
    bucket = TokenBucket.full(rate, burst, now=0.0)
    arrivals = arrivals_from(gap_list)
    sends = release_times(bucket, arrivals)
    assert all(send >= arrival for send, arrival in zip(sends, arrivals, strict=True))
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(sends))
    assert all(math.isfinite(send) for send in sends)


@settings(max_examples=200, deadline=None)
@given(rates, bursts, st.lists(st.floats(1.0, 5.0), min_size=1, max_size=50))
def test_requests_at_or_below_the_rate_never_wait(
    rate: float, burst: float, factors: list[float]
) -> None:
    bucket = TokenBucket.full(rate, burst, now=0.0)
    now = 0.0
    for factor in factors:
        assert bucket.delay_for_one(now) < 1e-9
        now += factor / rate


@settings(max_examples=200, deadline=None)
@given(rates, bursts, st.integers(1, 200))
def test_the_bucket_is_not_slower_than_its_rate(rate: float, burst: float, count: int) -> None:
    # Liveness: n requests at once are all out by (n - burst) / rate, not later.
    bucket = TokenBucket.full(rate, burst, now=0.0)
    last = max(bucket.delay_for_one(0.0) for _ in range(count))
    assert last == pytest.approx(max(0.0, (count - max(1.0, burst)) / rate), abs=1e-9)


# --- RequestGate, on a fake clock ------------------------------------------------------------


class FakeClock:
    """`time.monotonic` and `asyncio.sleep` for the ratelimit module only."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(ratelimit, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


async def test_unlimited_gate_never_sleeps(clock: FakeClock) -> None:
    gate = RequestGate(None)
    for _ in range(1000):
        await gate.wait_turn()
    assert clock.sleeps == []
    assert gate.current_rate is None


async def test_configured_rate_paces_after_the_burst(clock: FakeClock) -> None:
    gate = RequestGate(10.0)  # burst defaults to one second's worth
    start = clock.now
    for _ in range(30):
        await gate.wait_turn()
    assert len(clock.sleeps) == 20
    assert clock.sleeps == pytest.approx([0.1] * 20)
    assert clock.now - start == pytest.approx(2.0)
    assert gate.current_rate == 10.0


async def test_explicit_burst(clock: FakeClock) -> None:
    gate = RequestGate(2.0, burst=1.0)
    for _ in range(4):
        await gate.wait_turn()
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])


async def test_slow_rate_burst_is_at_least_one(clock: FakeClock) -> None:
    gate = RequestGate(0.1)
    await gate.wait_turn()
    await gate.wait_turn()
    assert clock.sleeps == pytest.approx([10.0])


async def test_pause_holds_the_next_request(clock: FakeClock) -> None:
    gate = RequestGate(None)
    gate.pause(5.0)
    await gate.wait_turn()
    assert clock.sleeps == pytest.approx([5.0])
    await gate.wait_turn()  # the pause is over
    assert len(clock.sleeps) == 1
    assert gate.pauses == 1


async def test_a_shorter_pause_does_not_shorten_a_longer_one(clock: FakeClock) -> None:
    gate = RequestGate(None)
    gate.pause(30.0)
    gate.pause(5.0)
    assert gate.pauses == 1
    clock.advance(10.0)
    await gate.wait_turn()
    assert clock.sleeps == pytest.approx([20.0])


async def test_a_longer_pause_extends(clock: FakeClock) -> None:
    gate = RequestGate(None)
    gate.pause(5.0)
    gate.pause(60.0)
    assert gate.pauses == 2
    await gate.wait_turn()
    assert clock.sleeps == pytest.approx([60.0])


async def test_pause_then_the_bucket_still_applies(clock: FakeClock) -> None:
    gate = RequestGate(1.0, burst=1.0)
    await gate.wait_turn()
    gate.pause(0.25)
    await gate.wait_turn()
    # 0.25 s paused, then the remaining 0.75 s until the bucket has a token.
    assert clock.sleeps == pytest.approx([0.25, 0.75])


async def test_zero_and_past_pauses_do_not_sleep(clock: FakeClock) -> None:
    gate = RequestGate(None)
    gate.pause(0.0)
    await gate.wait_turn()
    assert clock.sleeps == []


@settings(max_examples=100, deadline=None)
@given(
    st.none() | st.floats(0.1, 100.0),
    st.lists(
        st.tuples(st.sampled_from(["wait", "pause", "idle"]), st.floats(0.0, 30.0)),
        max_size=40,
    ),
)
def test_the_gate_keeps_the_configured_rate_whatever_happens(
    configured: float | None, actions: list[tuple[str, float]]
) -> None:
    """A 429 has one owner, the concurrency controller: the gate only pauses for a
    `Retry-After` and paces at the configured rate, which nothing changes."""
    fake = FakeClock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ratelimit, "time", SimpleNamespace(monotonic=fake.monotonic))
        patch.setattr(ratelimit, "asyncio", SimpleNamespace(sleep=fake.sleep))
        gate = RequestGate(configured)
        for action, amount in actions:
            if action == "wait":
                coroutine = gate.wait_turn()
                with pytest.raises(StopIteration):
                    coroutine.send(None)  # the fake sleep never suspends
            elif action == "pause":
                gate.pause(amount)
            else:
                fake.advance(amount)
            assert gate.current_rate == configured
    assert all(math.isfinite(s) and s > 0 for s in fake.sleeps)
    assert not hasattr(gate, "slow_down")
    assert not hasattr(gate, "throttled")
