"""What a list response says: the page, its pagination headers, its next link. Pure values.

The client shell hands the headers over as received; the rules (which counts are sane, which link
is the next one, where it may lead) live in `envelope` and `links`.
"""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from producer.errors import PartnerProtocolError, PullError, UnsafeLinkError
from producer.ocpi.envelope import Envelope, parse_count_header
from producer.ocpi.links import find_next_target, resolve_next_link


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """One successfully fetched list page."""

    url: URL
    request_id: str
    envelope: Envelope
    total: int | None
    limit: int | None
    next_url: URL | None
    traceparent: str | None
    refused_next: PullError | None = None  # the page is good; its next link is not


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """A request is about to be retried (for progress events)."""

    reason: str
    wait_s: float
    attempt: int
    url: str
    window: int | None


@dataclass(frozen=True, slots=True)
class PageContext:
    """Where a page belongs, for spans and retry notices."""

    window: int | None = None
    offset: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Pagination:
    """A list page's pagination headers, read defensively."""

    total: int | None  # X-Total-Count
    limit: int | None  # X-Limit
    next_url: URL | None  # the followable next link, None at the end (or when refused)
    refused_next: PullError | None = None  # a next link that is unsafe or unreadable


def read_pagination(
    request_url: URL, endpoint: URL, *, total: str | None, limit: str | None, links: list[str]
) -> Pagination:
    """The pagination of a page fetched from `request_url` of the module at `endpoint`."""
    next_url: URL | None = None
    refused: PullError | None = None
    try:
        target = find_next_target(links)
        if target is not None:
            next_url = resolve_next_link(request_url, target, endpoint)
    except (UnsafeLinkError, PartnerProtocolError) as error:
        # The link is unsafe or unreadable, but the page itself is good: keep it.
        refused = error
    return Pagination(parse_count_header(total), parse_count_header(limit), next_url, refused)
