"""Per-partner request pacing: a token bucket shared by every window, plus partner-wide pauses.

The bucket's arithmetic is pure (time is passed in); `RequestGate` is the asyncio shell that
sleeps. The gate obeys two things only: the configured rate (`--rate-limit`) and a 429's
`Retry-After`, which pauses the whole partner, not just the request that got it. Backing off
from a 429 is the concurrency controller's job (producer/ocpi/http/concurrency.py), and only its: a
429 must not cut the pace twice.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most `burst` stored; `rate=None` means unlimited."""

    rate: float | None
    burst: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float | None, burst: float, now: float) -> TokenBucket:
        """A bucket that starts with its whole burst available."""
        return cls(rate, max(1.0, burst), max(1.0, burst), now)

    def delay_for_one(self, now: float) -> float:
        """Take one token; return how long to wait until it may be used (0 if now)."""
        if self.rate is None:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.rate)
        self.updated_at = now
        self.tokens -= 1.0
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate


class RequestGate:
    """What every request to one partner passes through before it is sent."""

    def __init__(self, rate_per_s: float | None, burst: float | None = None) -> None:
        burst_size = burst if burst is not None else (rate_per_s or 1.0)
        self._bucket = TokenBucket.full(rate_per_s, burst_size, time.monotonic())
        self._paused_until = 0.0
        self.pauses = 0

    @property
    def current_rate(self) -> float | None:
        """Requests per second allowed (None: unlimited): the configured rate, always."""
        return self._bucket.rate

    async def wait_turn(self) -> None:
        """Sleep until a request may be sent."""
        now = time.monotonic()
        if self._paused_until > now:
            await asyncio.sleep(self._paused_until - now)
        delay = self._bucket.delay_for_one(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """The partner asked to wait (Retry-After): hold every request until then."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1
