"""Per-partner request pacing: a token bucket shared by every window, plus partner-wide pauses.

The bucket's arithmetic is pure (time is passed in); `RequestGate` is the asyncio shell that
sleeps. A 429 with `Retry-After` pauses the whole partner, not just the request that got it. A
429 without `Retry-After` (some partners send none) halves the rate; each calm stretch after that
raises it again by a tenth, never above the configured rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

RECOVERY_INTERVAL_S = 10.0
DEBOUNCE_S = 1.0
MIN_RATE_FRACTION = 1 / 64


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
        self._configured = rate_per_s
        burst_size = burst if burst is not None else (rate_per_s or 1.0)
        self._bucket = TokenBucket.full(rate_per_s, burst_size, time.monotonic())
        self._paused_until = 0.0
        self._last_slowdown = 0.0
        # The lowest pace slow_down may reach; for an unlimited partner it is set at the first 429.
        self._floor = (rate_per_s or 0.0) * MIN_RATE_FRACTION
        self.pauses = 0
        self.slowdowns = 0
        self._sent: deque[float] = deque(maxlen=4096)

    @property
    def current_rate(self) -> float | None:
        """Requests per second allowed right now (None: unlimited)."""
        return self._bucket.rate

    async def wait_turn(self) -> None:
        """Sleep until a request may be sent."""
        self._recover(time.monotonic())
        now = time.monotonic()
        if self._paused_until > now:
            await asyncio.sleep(self._paused_until - now)
        delay = self._bucket.delay_for_one(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)
        self._sent.append(time.monotonic())

    def observed_rate(self, window_s: float = 2.0) -> float:
        """Requests per second actually sent over the last `window_s` seconds."""
        now = time.monotonic()
        recent = sum(1 for t in self._sent if now - t <= window_s)
        return recent / window_s

    def throttled(self) -> None:
        """A 429 without Retry-After: slow down from the measured pace, at most once a second
        (the requests in flight when a partner starts throttling all come back 429 together)."""
        if time.monotonic() - self._last_slowdown < DEBOUNCE_S:
            return
        self.slow_down(self.observed_rate())

    def pause(self, seconds: float) -> None:
        """The partner asked to wait (Retry-After): hold every request until then."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1

    def slow_down(self, observed_rate: float) -> None:
        """A 429 without Retry-After: halve the pace (starting from what we actually sent)."""
        now = time.monotonic()
        if self._bucket.rate is None:
            base = max(1.0, observed_rate)
            self._floor = base * MIN_RATE_FRACTION
        else:
            base = self._bucket.rate
        self._bucket.rate = max(self._floor, base / 2)
        self._bucket.burst = 1.0
        self._bucket.tokens = min(self._bucket.tokens, 0.0)
        self._last_slowdown = now
        self.slowdowns += 1

    def _recover(self, now: float) -> None:
        rate = self._bucket.rate
        if rate is None or self._last_slowdown == 0.0:
            return
        if now - self._last_slowdown < RECOVERY_INTERVAL_S:
            return
        self._last_slowdown = now
        if self._configured is None:
            self._bucket.rate = rate * 1.1
            if self._bucket.rate > 10_000:
                self._bucket.rate = None
                self._last_slowdown = 0.0
        else:
            self._bucket.rate = min(self._configured, rate * 1.1)
            if self._bucket.rate >= self._configured:
                self._bucket.burst = max(1.0, self._configured)
