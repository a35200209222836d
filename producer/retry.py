"""The one retry policy of the puller: how long to wait before the next attempt, and when to stop.

Every retry loop (partner requests, produce, producer renewal, transaction commits, read-backs,
checkpoint waits, batch redelivery) asks a named `RetryPolicy` for its waits. The waits grow
geometrically up to a cap; with jitter (the default) each is a uniform draw in `[0, ceiling]`
("full jitter"), which spreads the retries of many windows apart instead of letting them hit a
recovering server together. A server's `Retry-After` wins over the backoff but is capped, so one
bad header cannot park a pull for a day. A loop stops when its attempts are spent or when the next
wait would end past its deadline.

Pure: the clock and the random source are passed in; `retry_until` is the one loop that sleeps.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Waits of `base_delay_s` before the first retry, growing `growth` times per retry up to
    `max_delay_s` (drawn at random below that ceiling when `jitter`); at most `max_attempts`
    attempts in all (None: no limit); a `Retry-After` counts up to `max_retry_after_s`; no wait
    ending past `deadline_s` after the first attempt began (None: no deadline)."""

    max_attempts: int | None = None
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0
    deadline_s: float | None = None
    growth: float = 2.0
    jitter: bool = True

    def within(self, deadline_s: float) -> RetryPolicy:
        """The same policy with a deadline (read from the configuration)."""
        return replace(self, deadline_s=deadline_s)

    def ceiling(self, attempt: int) -> float:
        """The largest wait before retry number `attempt` (1 = the first retry; 0 counts as 1)."""
        # The exponent is bounded: 2**1024 no longer converts to float, and 2**62 outgrows any cap.
        exponent = min(max(0, attempt - 1), 62)
        return min(self.max_delay_s, self.base_delay_s * float(self.growth**exponent))

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The backoff before retry number `attempt`: a full-jitter draw, or the ceiling itself."""
        if not self.jitter:
            return self.ceiling(attempt)
        return float(rng.uniform(0.0, self.ceiling(attempt)))

    def wait(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """How long to wait before retry number `attempt`: `Retry-After` (capped) or backoff."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_retry_after_s)
        return self.backoff(attempt, rng)

    def next_wait(
        self,
        attempt: int,
        rng: random.Random,
        *,
        retry_after_s: float | None = None,
        max_attempts: int | None = None,
        now: float = 0.0,
        deadline: float | None = None,
    ) -> float | None:
        """After `attempt` attempts failed: the wait before the next, or None to give up.

        Gives up when `attempt` reaches `max_attempts` (this failure's own limit, else the
        policy's; checked before any random draw), or when the wait would end past `deadline`
        (a clock reading, like `now`)."""
        limit = self.max_attempts if max_attempts is None else max_attempts
        if limit is not None and attempt >= limit:
            return None
        wait = self.wait(attempt, rng, retry_after_s)
        if deadline is not None and now + wait > deadline:
            return None
        return wait

    def deadline_from(self, now: float) -> float | None:
        """The clock reading past which no wait may end, for attempts that begin at `now`."""
        return None if self.deadline_s is None else now + self.deadline_s


async def retry_until(
    policy: RetryPolicy,
    action: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    give_up: Callable[[BaseException], BaseException],
    rng: random.Random,
    deadline: float | None = None,
) -> T:
    """`action()` until it returns, retrying what raises one of `retry_on` after the policy's
    wait; when the policy gives up, raises `give_up(last error)` (without the chained error).
    `deadline` (a `time.monotonic()` reading) overrides the policy's `deadline_s`."""
    if deadline is None:
        deadline = policy.deadline_from(time.monotonic())
    attempt = 0
    while True:
        attempt += 1
        try:
            return await action()
        except retry_on as error:
            wait = policy.next_wait(attempt, rng, now=time.monotonic(), deadline=deadline)
            if wait is None:
                raise give_up(error) from None
        await asyncio.sleep(wait)
