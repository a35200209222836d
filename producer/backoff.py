"""The one backoff formula: exponential with full jitter. Pure.

Used for partner requests (`producer.ocpi.http.retry`), Kafka waits and checkpoint writes
(`producer.kafka.output`): a uniform draw in `[0, min(cap, base * 2^(attempt-1))]` spreads the
retries of many windows apart instead of letting them hit a recovering server together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """`base_s` before the first retry at most, doubling per attempt up to `cap_s`."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def ceiling(self, attempt: int) -> float:
        """The largest wait before retry number `attempt` (1 = the first retry)."""
        # The exponent is bounded: 2**1024 no longer converts to float, and 2**62 outgrows any cap.
        return min(self.cap_s, self.base_s * float(2 ** min(max(0, attempt - 1), 62)))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A full-jitter wait before retry number `attempt`."""
        return float(rng.uniform(0.0, self.ceiling(attempt)))
