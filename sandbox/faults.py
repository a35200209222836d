"""Which fault, if any, a request gets: a pure decision from a seeded random stream."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Literal

FaultKind = Literal["stall", "reset", "error", "throttle", "envelope_error"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = (
    "stall",
    "reset",
    "error",
    "throttle",
    "envelope_error",
)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probability per page request of each fault; all zero means a well-behaved partner."""

    stall: float = 0.0
    reset: float = 0.0
    error: float = 0.0
    throttle: float = 0.0
    envelope_error: float = 0.0

    def rate(self, kind: FaultKind) -> float:
        """The configured probability of `kind`."""
        return float(getattr(self, kind))


def choose_fault(rates: FaultRates, rng: random.Random) -> FaultKind | None:
    """Draw each fault independently (in a fixed order) and return the first that fires."""
    for kind in FAULT_KINDS:
        # Always draw, so the stream stays aligned whatever the rates are.
        if rng.random() < rates.rate(kind):
            return kind
    return None


def latency_seconds(mean_ms: float, rng: random.Random) -> float:
    """Page latency with jitter: uniform in [0.5, 1.5] x the mean."""
    if mean_ms <= 0:
        return 0.0
    return mean_ms * (0.5 + rng.random()) / 1000.0
