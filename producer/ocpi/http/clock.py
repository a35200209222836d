"""The partner's clock against ours, from the times its answers carry. Pure.

A partner stamps `last_updated` with its own clock, while the pull pins `date_to` with ours. A
partner whose clock lags can stamp a change made after the pin with a time before it: the change
lands in a window that may already be read. Every answer says what time it is at the partner:
the HTTP `Date` header (whole seconds, set by its server from the system clock) and the
envelope's `timestamp` (set by its application, now and then stale or in another zone). An answer
stamped at partner time P, asked at our S and received at our R, bounds the skew (partner minus
ours) to [P − R, P + resolution − S]; the bounds of every answer of one source together narrow
it. A source whose answers do not agree (a cached body, a fixed timestamp, a clock that jumped)
is not believed. `Date` wins over the envelope when both are believed and differ.

Only a credible skew (at most `CREDIBLE_SKEW_S`) moves the pin: a partner's clock drifts by
seconds or minutes, and a larger gap is a bug of its timestamps (a time zone, a constant), which
must never make a pull skip hours of data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from schemas.datetimes import parse_datetime

# Beyond this, a skew is worth a warning (and its seconds are reported).
NOTABLE_SKEW_S = 5.0
# Beyond this, a skew is the partner's timestamps being wrong, not its clock.
CREDIBLE_SKEW_S = 900.0
# Two believed sources differing by more than this: `Date` is taken.
SOURCES_AGREE_S = 2.0

Source = Literal["date", "timestamp"]


@dataclass(frozen=True, slots=True)
class SkewEstimate:
    """Partner clock minus ours, in seconds: an estimate within bounds its answers agree on."""

    skew_s: float
    low_s: float
    high_s: float
    source: Source

    @property
    def notable(self) -> bool:
        """Beyond `NOTABLE_SKEW_S` either way."""
        return abs(self.skew_s) > NOTABLE_SKEW_S

    @property
    def credible(self) -> bool:
        """Within `CREDIBLE_SKEW_S`: a clock's drift, not a bug of its timestamps."""
        return abs(self.skew_s) <= CREDIBLE_SKEW_S

    @property
    def behind_s(self) -> float:
        """How far the partner's clock may lag ours when it surely lags and credibly (else 0):
        the most its answers allow."""
        return -self.low_s if self.high_s < 0 and self.credible else 0.0

    def describe(self) -> str:
        """`12.3 s behind ours` / `ahead of ours`."""
        return f"{abs(self.skew_s):.1f} s {'behind' if self.skew_s < 0 else 'ahead of'} ours"


class _Bounds:
    """The skew bounds one source's answers agree on."""

    def __init__(self) -> None:
        self.low: float | None = None
        self.high: float | None = None
        self.agree = True

    def narrow(self, low: float, high: float) -> None:
        if not self.agree:
            return
        self.low = low if self.low is None else max(self.low, low)
        self.high = high if self.high is None else min(self.high, high)
        if self.low > self.high:
            self.agree = False

    def estimate(self, source: Source) -> SkewEstimate | None:
        if not self.agree or self.low is None or self.high is None:
            return None
        return SkewEstimate((self.low + self.high) / 2, self.low, self.high, source)


class PartnerClock:
    """What the partner's answers say about its clock."""

    def __init__(self) -> None:
        self._sources: dict[Source, _Bounds] = {"date": _Bounds(), "timestamp": _Bounds()}
        self.inconsistent: list[Source] = []  # sources whose answers did not agree

    def heard(
        self,
        partner_time: float,
        resolution_s: float,
        sent: float,
        received: float,
        source: Source = "date",
    ) -> None:
        """An answer stamped `partner_time` (epoch s, of that resolution) to a request sent at
        our `sent` and answered at our `received` (epoch s)."""
        bounds = self._sources[source]
        bounds.narrow(partner_time - received, partner_time + resolution_s - sent)
        if not bounds.agree and source not in self.inconsistent:
            self.inconsistent.append(source)

    def heard_answer(
        self, timestamp: object, date_header: str | None, sent: float, received: float
    ) -> None:
        """An answer's envelope `timestamp` and HTTP `Date`, whichever can be read."""
        stamp = parse_datetime(timestamp)
        if stamp is not None:
            # Without a fraction the partner's time lies anywhere in that second.
            resolution = 0.001 if stamp.instant.microsecond else 1.0
            self.heard(stamp.instant.timestamp(), resolution, sent, received, "timestamp")
        date = _http_date(date_header)
        if date is not None:
            self.heard(date, 1.0, sent, received, "date")

    @property
    def estimate(self) -> SkewEstimate | None:
        """The skew as far as the answers tell (`Date` first), or None when no source is
        believed."""
        by_date = self._sources["date"].estimate("date")
        by_timestamp = self._sources["timestamp"].estimate("timestamp")
        if by_date is None:
            return by_timestamp
        if by_timestamp is None or abs(by_date.skew_s - by_timestamp.skew_s) > SOURCES_AGREE_S:
            return by_date
        # Both believed and close: the application's own clock stamps last_updated.
        return by_timestamp


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
