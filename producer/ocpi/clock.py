"""The partner's clock against ours, from the times its answers carry. Pure.

A partner stamps `last_updated` with its own clock, while the pull pins `date_to` with ours. A
partner whose clock lags can stamp a change made after the pin with a time before it: the change
lands in a window that may already be read. Every answer says what time it is at the partner:
the envelope's `timestamp` and the HTTP `Date` header (whole seconds). An answer stamped at
partner time P, asked at our S and received at our R, bounds the skew (partner minus ours) to
[P − R, P + resolution − S]; the bounds of every answer together narrow it. Answers that do not
agree (a cached body, a clock that jumped) make the estimate fall back to the median of their
midpoints, and the bounds are no longer claimed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from schemas.datetimes import parse_datetime

# Beyond this, a skew is worth a warning (and its seconds are reported).
NOTABLE_SKEW_S = 5.0
# Samples kept for the fallback median.
SAMPLES_KEPT = 64


@dataclass(frozen=True, slots=True)
class SkewEstimate:
    """Partner clock minus ours, in seconds: an estimate, and bounds when the answers agree."""

    skew_s: float
    low_s: float | None  # the partner's clock is at least this far ahead (negative: behind)
    high_s: float | None

    @property
    def notable(self) -> bool:
        """Beyond `NOTABLE_SKEW_S` either way."""
        return abs(self.skew_s) > NOTABLE_SKEW_S

    @property
    def behind_s(self) -> float:
        """How far the partner's clock may lag ours, when it surely lags (else 0): the most
        its answers allow, or, when they disagree, a notable median."""
        if self.low_s is not None and self.high_s is not None:
            return -self.low_s if self.high_s < 0 else 0.0
        return -self.skew_s if self.skew_s < -NOTABLE_SKEW_S else 0.0

    def describe(self) -> str:
        """`12.3 s behind ours` / `ahead of ours`."""
        return f"{abs(self.skew_s):.1f} s {'behind' if self.skew_s < 0 else 'ahead of'} ours"


class PartnerClock:
    """What the partner's answers say about its clock."""

    def __init__(self) -> None:
        self._low: float | None = None
        self._high: float | None = None
        self._agree = True
        self._midpoints: list[float] = []

    def heard(self, partner_time: float, resolution_s: float, sent: float, received: float) -> None:
        """An answer stamped `partner_time` (epoch s, of that resolution) to a request sent at
        our `sent` and answered at our `received` (epoch s)."""
        low, high = partner_time - received, partner_time + resolution_s - sent
        self._midpoints.append((low + high) / 2)
        del self._midpoints[:-SAMPLES_KEPT]
        if not self._agree:
            return
        self._low = low if self._low is None else max(self._low, low)
        self._high = high if self._high is None else min(self._high, high)
        if self._low > self._high:
            self._agree = False

    def heard_answer(
        self, timestamp: object, date_header: str | None, sent: float, received: float
    ) -> None:
        """An answer's envelope `timestamp` and HTTP `Date`, whichever can be read."""
        stamp = parse_datetime(timestamp)
        if stamp is not None:
            # Without a fraction the partner's time lies anywhere in that second.
            resolution = 0.001 if stamp.instant.microsecond else 1.0
            self.heard(stamp.instant.timestamp(), resolution, sent, received)
        date = _http_date(date_header)
        if date is not None:
            self.heard(date, 1.0, sent, received)

    @property
    def estimate(self) -> SkewEstimate | None:
        """The skew as far as the answers tell, or None before any."""
        if not self._midpoints:
            return None
        if self._agree and self._low is not None and self._high is not None:
            return SkewEstimate((self._low + self._high) / 2, self._low, self._high)
        return SkewEstimate(statistics.median(self._midpoints), None, None)


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        moment: datetime = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()
