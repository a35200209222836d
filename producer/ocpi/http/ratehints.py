"""What a partner says, or shows, about its rate limit: for `plan`'s estimate. Pure.

Advertised: the IETF draft's `RateLimit-Policy` (`10;w=1`, or `"name";q=10;w=1`),
`RateLimit-Limit`/`RateLimit-Reset`, and the common `X-RateLimit-Limit`/`-Reset` (a `w=` window
where given; else the seconds to the reset, or the epoch it names; else per second). Observed:
answered 429 after so many requests in the second before. The estimate takes the lowest of
these and the configured `--rate-limit`, and says which it took.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Source = Literal["advertised", "observed", "configured"]

EPOCH_AFTER = 1_000_000_000  # a reset this large is an instant (epoch seconds), not a delay
_QUOTA = re.compile(r"(?:^|;)\s*q\s*=\s*(\d+(?:\.\d+)?)")
_WINDOW = re.compile(r"(?:^|;)\s*w\s*=\s*(\d+(?:\.\d+)?)")
_LEADING_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class RateHint:
    """Requests per second the partner allows, where that comes from, and what said so."""

    per_s: float
    source: Source
    detail: str


def _lower(headers: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Headers by lower-case name (HTTP's are case-insensitive), each with its name as sent."""
    return {name.lower(): (name, value) for name, value in headers.items()}


def _policy_rates(value: str) -> list[float]:
    """Requests per second of each policy in a `RateLimit-Policy` (or `X-RateLimit-Limit`)
    value: `10;w=1`, `"burst";q=100;w=60`, `100, 100;w=60`."""
    rates = []
    for policy in value.split(","):
        quota = _QUOTA.search(policy) or _LEADING_NUMBER.match(policy)
        window = _WINDOW.search(policy)
        if quota is not None and window is not None and float(window.group(1)) > 0:
            rates.append(float(quota.group(1)) / float(window.group(1)))
    return rates


def _window_s(reset: str | None, now_epoch: float) -> float | None:
    """The seconds a limit applies to, from a reset header: a delay, or an epoch instant."""
    if reset is None or (found := _LEADING_NUMBER.match(reset)) is None:
        return None
    value = float(found.group(1))
    if value >= EPOCH_AFTER:
        value -= now_epoch
    return value if value > 0 else None


def advertised(headers: Mapping[str, str], now_epoch: float) -> RateHint | None:
    """The rate limit a response's headers advertise, or None."""
    found = _lower(headers)
    shown: list[str] = []
    rates: list[float] = []

    def value(name: str) -> str | None:
        entry = found.get(name)
        if entry is None:
            return None
        shown.append(f"{entry[0]}: {entry[1]}")
        return entry[1]

    for name in ("ratelimit-policy", "x-ratelimit-policy"):
        if (policy := value(name)) is not None:
            rates += _policy_rates(policy)
    for prefix in ("ratelimit", "x-ratelimit"):
        limit = value(f"{prefix}-limit")
        if limit is None:
            continue
        windowed = _policy_rates(limit)
        rates += windowed
        quota = _LEADING_NUMBER.match(limit)
        reset = value(f"{prefix}-reset")
        if not windowed and quota is not None:
            rates.append(float(quota.group(1)) / max(_window_s(reset, now_epoch) or 1.0, 1.0))
    if not rates:
        return None
    return RateHint(min(rates), "advertised", ", ".join(shown))


def observed(answered: Sequence[tuple[float, int]]) -> RateHint | None:
    """The rate at which the partner first answered 429: the answers in the second before it.
    `answered` is (monotonic time, HTTP status) per answer, in order."""
    first = next((at for at, status in answered if status == 429), None)
    if first is None:
        return None
    before = sum(1 for at, status in answered if first - 1.0 <= at < first and status != 429)
    per_s = float(max(1, before))
    return RateHint(per_s, "observed", f"HTTP 429 after {before} requests in a second")


def binding(hints: Sequence[RateHint | None], configured: float | None) -> RateHint | None:
    """The limit that holds the pull: the lowest of what the partner advertised or showed and
    the configured `--rate-limit`."""
    found = [hint for hint in hints if hint is not None]
    if configured is not None:
        found.append(RateHint(configured, "configured", f"--rate-limit {configured:g}"))
    return min(found, key=lambda hint: hint.per_s, default=None)
