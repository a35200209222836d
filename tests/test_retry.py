"""The one retry policy (producer/retry.py): tables, properties, and the loop that sleeps by it.

The named policies are pinned to the waits their loops had before they shared one policy: the
Kafka waits' full-jitter doubling, the plan wait's ×1.5 polling, the outbox's redelivery doubling.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.kafka.checkpoints import PLAN_WAIT
from producer.kafka.committer import COMMIT, READ_BACK
from producer.kafka.lifecycle import PRODUCER_RENEWAL
from producer.kafka.outbox import REDELIVERY
from producer.kafka.output import PRODUCE
from producer.ocpi.http import retry as partner_retry
from producer.retry import RetryPolicy, retry_until

KAFKA_WAITS = (PRODUCE, PRODUCER_RENEWAL, COMMIT, READ_BACK)


def full_jitter_draw(base: float, cap: float, attempt: int, rng: random.Random) -> float:
    """The formula every jittered loop used before: uniform in [0, min(cap, base·2^(n-1))]."""
    return float(rng.uniform(0.0, min(cap, base * float(2 ** min(max(0, attempt - 1), 62)))))


# --- the named policies ----------------------------------------------------------------------


@pytest.mark.parametrize("policy", KAFKA_WAITS)
@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 10.0), (100, 10.0), (10**6, 10.0)],
)
def test_kafka_waits_double_from_half_a_second_up_to_ten(
    policy: RetryPolicy, attempt: int, ceiling: float
) -> None:
    assert policy.jitter
    assert policy.ceiling(attempt) == ceiling


@settings(max_examples=200, deadline=None)
@given(st.integers(-5, 10_000), st.integers(0, 2**32))
def test_kafka_waits_draw_as_the_loops_did(attempt: int, seed: int) -> None:
    for policy in KAFKA_WAITS:
        expected = full_jitter_draw(0.5, 10.0, attempt, random.Random(seed))
        assert policy.backoff(attempt, random.Random(seed)) == expected


@given(st.integers(1, 200))
def test_the_plan_wait_grows_by_half_up_to_five_seconds_without_jitter(looks: int) -> None:
    delay = 0.5  # the loop wait_for_plan had: 0.5 s, then ×1.5 per look, at most 5 s
    for _ in range(looks - 1):
        delay = min(5.0, delay * 1.5)
    assert PLAN_WAIT.next_wait(looks, random.Random()) == pytest.approx(delay, rel=1e-12)


@given(st.integers(1, 10_000))
def test_redelivery_doubles_from_a_fifth_of_a_second_up_to_five(redeliveries: int) -> None:
    expected = min(5.0, 0.2 * 2.0 ** min(redeliveries - 1, 10))
    assert REDELIVERY.ceiling(redeliveries) == expected
    assert REDELIVERY.backoff(redeliveries, random.Random(0)) == expected


def test_partner_requests_are_a_retry_policy_of_eight_attempts_without_deadline() -> None:
    policy = partner_retry.PARTNER_REQUESTS
    assert isinstance(policy, RetryPolicy)
    assert (policy.max_attempts, policy.deadline_s) == (8, None)
    assert (policy.base_delay_s, policy.max_delay_s, policy.max_retry_after_s) == (0.5, 30.0, 300.0)
    assert partner_retry.RetryPolicy(max_attempts=3).within(9.0).max_attempts == 3


# --- next_wait: attempts, deadlines, Retry-After ---------------------------------------------


def test_attempts_run_out_before_any_draw() -> None:
    policy = RetryPolicy(max_attempts=3)
    rng = random.Random(7)
    before = rng.getstate()
    assert policy.next_wait(3, rng) is None
    assert policy.next_wait(4, rng) is None
    assert rng.getstate() == before
    assert policy.next_wait(2, rng) is not None


def test_a_failures_own_limit_wins_over_the_policys() -> None:
    policy = RetryPolicy(max_attempts=8)
    assert policy.next_wait(3, random.Random(0), max_attempts=3) is None
    assert policy.next_wait(3, random.Random(0), max_attempts=4) is not None
    assert RetryPolicy().next_wait(10**6, random.Random(0)) is not None  # no limit


@pytest.mark.parametrize(
    ("now", "deadline", "gives_up"),
    [(0.0, 0.49, True), (0.0, 0.5, False), (100.0, 100.5, False), (100.0, 100.4, True)],
)
def test_no_wait_ends_past_the_deadline(now: float, deadline: float, gives_up: bool) -> None:
    policy = RetryPolicy(jitter=False)  # waits 0.5 s before the first retry
    wait = policy.next_wait(1, random.Random(0), now=now, deadline=deadline)
    assert (wait is None) == gives_up


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(0.0, 0.0), (12.0, 12.0), (300.0, 300.0), (86_400.0, 300.0)]
)
def test_retry_after_wins_over_the_backoff_up_to_its_cap(
    retry_after: float, expected: float
) -> None:
    assert RetryPolicy().next_wait(5, random.Random(0), retry_after_s=retry_after) == expected


def test_a_capped_retry_after_still_meets_the_deadline() -> None:
    policy = RetryPolicy(max_retry_after_s=60.0)
    assert policy.next_wait(1, random.Random(0), retry_after_s=3600, now=0, deadline=59) is None
    assert policy.next_wait(1, random.Random(0), retry_after_s=3600, now=0, deadline=60) == 60.0


def test_the_deadline_comes_from_the_configuration() -> None:
    policy = RetryPolicy().within(30.0)
    assert policy.deadline_s == 30.0
    assert policy.deadline_from(100.0) == 130.0
    assert RetryPolicy().deadline_from(100.0) is None


policies = st.builds(
    RetryPolicy,
    max_attempts=st.none() | st.integers(1, 50),
    base_delay_s=st.floats(0.0, 10.0),
    max_delay_s=st.floats(0.0, 600.0),
    max_retry_after_s=st.floats(0.0, 3600.0),
    growth=st.floats(1.0, 4.0),
    jitter=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(
    policies,
    st.integers(-10, 100_000),
    st.none() | st.floats(0.0, 1e9),
    st.floats(0.0, 1e6),
    st.none() | st.floats(0.0, 1e6),
    st.integers(0, 2**32),
)
def test_a_wait_is_finite_bounded_and_within_the_deadline(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    now: float,
    deadline: float | None,
    seed: int,
) -> None:
    wait = policy.next_wait(
        attempt, random.Random(seed), retry_after_s=retry_after, now=now, deadline=deadline
    )
    if policy.max_attempts is not None and attempt >= policy.max_attempts:
        assert wait is None
    if wait is None:
        return
    assert math.isfinite(wait)
    bound = policy.ceiling(attempt) if retry_after is None else policy.max_retry_after_s
    assert 0.0 <= wait <= bound
    assert policy.ceiling(attempt) <= policy.max_delay_s
    if deadline is not None:
        assert now + wait <= deadline


@settings(max_examples=200, deadline=None)
@given(policies, st.integers(1, 60))
def test_ceilings_never_shrink(policy: RetryPolicy, attempt: int) -> None:
    assert policy.ceiling(attempt) <= policy.ceiling(attempt + 1)


@settings(max_examples=100, deadline=None)
@given(policies, st.integers(1, 20), st.integers(0, 2**32))
def test_a_wait_is_reproducible_from_the_rng(policy: RetryPolicy, attempt: int, seed: int) -> None:
    first = policy.next_wait(attempt, random.Random(seed))
    assert first == policy.next_wait(attempt, random.Random(seed))


# --- retry_until: the loop ---------------------------------------------------------------------

QUICK = RetryPolicy(base_delay_s=0.001, max_delay_s=0.001)


class Refused(Exception):
    pass


class GaveUp(Exception):
    pass


async def test_retry_until_returns_once_an_attempt_succeeds() -> None:
    calls: list[int] = []

    async def action() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise Refused("not yet")
        return "done"

    result = await retry_until(
        QUICK.within(60.0), action, retry_on=(Refused,), give_up=GaveUp, rng=random.Random(0)
    )
    assert (result, len(calls)) == ("done", 4)


async def test_retry_until_gives_up_with_the_callers_error_and_no_chain() -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)
        raise Refused(f"refusal {len(calls)}")

    policy = RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.001)
    with pytest.raises(GaveUp, match="refusal 3") as raised:
        await retry_until(
            policy,
            action,
            retry_on=(Refused,),
            give_up=lambda e: GaveUp(str(e)),
            rng=random.Random(),
        )
    assert len(calls) == 3
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


async def test_retry_until_stops_at_a_deadline_already_past() -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)
        raise Refused("down")

    with pytest.raises(GaveUp):
        await retry_until(
            QUICK, action, retry_on=(Refused,), give_up=GaveUp, rng=random.Random(), deadline=0.0
        )
    assert len(calls) == 1


async def test_retry_until_lets_other_errors_through_at_once() -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await retry_until(
            QUICK.within(60.0), action, retry_on=(Refused,), give_up=GaveUp, rng=random.Random()
        )
    assert len(calls) == 1
