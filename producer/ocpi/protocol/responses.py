"""What a list response says: the page, its pagination headers, its next link. Pure values.

The client shell hands the headers over as received; the rules (which counts are sane, which link
is the next one, where it may lead) live in `envelope` and `links`.
"""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from producer.errors import PartnerProtocolError, PullError, UnsafeLinkError
from producer.ocpi.protocol.envelope import Envelope, parse_count_header
from producer.ocpi.protocol.links import find_next_link, resolve_next_link


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
    link_without_rel: bool = False  # the next link came as `Link: <url>` with no rel
    refused_link: str | None = None  # the refused next link as written (not safe to show raw)


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
    without_rel: bool = False  # the next link had no `rel` (a lone `Link: <url>`)
    refused_target: str | None = None  # the refused link as written


def read_pagination(
    request_url: URL, endpoint: URL, *, total: str | None, limit: str | None, links: list[str]
) -> Pagination:
    """The pagination of a page fetched from `request_url` of the module at `endpoint`."""
    next_url: URL | None = None
    refused: PullError | None = None
    found = None
    try:
        found = find_next_link(links)
        if found is not None:
            next_url = resolve_next_link(request_url, found.target, endpoint)
    except (UnsafeLinkError, PartnerProtocolError) as error:
        # The link is unsafe or unreadable, but the page itself is good: keep it.
        refused = error
    return Pagination(
        parse_count_header(total),
        parse_count_header(limit),
        next_url,
        refused,
        without_rel=found is not None and found.without_rel,
        refused_target=None if refused is None or found is None else found.target,
    )
