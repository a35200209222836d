"""Partner requests' retries: which failures are worth another try, how many, and `Retry-After`.

The waits are the project's one retry policy (`producer.retry`): exponential backoff with full
jitter; a partner's `Retry-After` (seconds or HTTP-date) wins over the backoff but is capped, so
one bad header cannot park the pull for a day. Pure functions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import producer.retry

FailureKind = Literal[
    "http_status",  # an HTTP error status
    "ocpi_status",  # HTTP 200 with a non-1xxx OCPI status_code
    "timeout",
    "connection",  # refused, reset, dropped mid-body
    "bad_body",  # 200 with a body that is not an OCPI envelope
]


@dataclass(frozen=True, slots=True)
class RetryPolicy(producer.retry.RetryPolicy):
    """How often and how patiently a page request is retried (no deadline: attempts only)."""

    max_attempts: int = 8
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0
    # A 200 whose body is not OCPI is usually a proxy's error page; give it a few tries only.
    max_bad_body_attempts: int = 3


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt, described by what was observed."""

    kind: FailureKind
    http_status: int | None = None
    ocpi_status: int | None = None


def is_retryable(failure: Failure) -> bool:
    """Whether trying the same request again can succeed.

    Retried: timeouts, connection errors, HTTP 408/425/429/5xx, OCPI 3000 (generic server error)
    and the hub's 4002/4003 (partner slow or offline). Not retried: 401/403/404 and other 4xx,
    OCPI 2xxx (our request is wrong), 3001-3003 (registration/version/endpoint problems), 4000/4001.
    """
    if failure.kind in ("timeout", "connection", "bad_body"):
        return True
    if failure.kind == "http_status":
        status = failure.http_status or 0
        return status in (408, 425, 429) or 500 <= status <= 599
    code = failure.ocpi_status or 0
    return code == 3000 or 3900 <= code <= 3999 or code in (4002, 4003)


def attempts_allowed(policy: RetryPolicy, failure: Failure) -> int:
    """The total number of attempts a request may take when it keeps failing like this."""
    if failure.kind == "bad_body":
        return min(policy.max_attempts, policy.max_bad_body_attempts)
    return policy.max_attempts


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (1 = first retry)."""
    return policy.backoff(attempt, rng)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None.

    Garbage yields None (fall back to backoff); a date in the past yields 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():  # isdigit() alone admits '²', which int() rejects
        return float(int(text[:12]))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    policy: RetryPolicy, attempt: int, retry_after_s: float | None, rng: random.Random
) -> float:
    """How long to wait before retry number `attempt`: Retry-After (capped) or backoff."""
    return policy.wait(attempt, rng, retry_after_s)


# The policy of page and discovery requests when the configuration names no other.
PARTNER_REQUESTS = RetryPolicy()
