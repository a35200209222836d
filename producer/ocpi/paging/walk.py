"""The values a window walk exchanges with its driver: requests, what pages said, chain links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page to fetch: follow `url` when given, else build the window's URL at `offset`, asking
    for `limit` objects when given (a short patch) or the window's page size."""

    request_id: int
    offset: int
    url: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class PageOutcome:
    """What a fetched page said about pagination."""

    count: int
    total: int | None
    limit: int | None
    next_url: str | None  # resolved and checked by the shell; None when there is no next page
    next_offset: int | None  # the offset of `next_url` when it is a plain offset URL, else None
    asked: int | None = None  # the `limit` the request asked for, when known


@dataclass(frozen=True, slots=True)
class ChainLink:
    """A page that extends the verified chain: where it ended and the total it reported."""

    request_id: int
    end: int
    total: int | None


# Whether a page without a next link is read past: `auto` whenever nothing shows it is the end
# (totals or links missing, or contradicting what arrived); `on` past every full page; `off` never.
ProbePastEnd = Literal["auto", "on", "off"]


@dataclass(frozen=True, slots=True)
class WalkStart:
    """Where and how a walk over one window begins: its position (a resume's checkpoint), how
    many pages it may ask ahead, whether it reads past a last page, where a re-read of part of
    a window stops, and a count served before any of its pages (the plan's)."""

    offset: int = 0
    total: int | None = None
    max_ahead: int = 1
    probe_past_end: ProbePastEnd = "auto"
    stop_at: int | None = None
    earlier_total: int | None = None


LoopReason = Literal["repeated_link", "empty_pages_with_link", "too_many_pages", "no_progress"]
