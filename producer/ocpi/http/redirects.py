"""Same-origin redirects: followed with the credentials, at most a few in a row. Pure.

A FastAPI-based partner answers a module URL without its trailing slash with a 307 to the slashed
URL; some put their versions endpoints behind a 301. Such redirects stay on the partner's origin,
so the token may follow them. A redirect to another scheme, host or port is refused: the token is
never sent anywhere the operator did not point us.
"""

from __future__ import annotations

from typing import Final

from yarl import URL

from producer.errors import PartnerProtocolError
from producer.ocpi.protocol.links import origin_of

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 5


def redirect_target(current: URL, status: int, location: str | None, hops: int) -> URL:
    """Where a redirect leads, or PartnerProtocolError when it may not be followed.

    `hops` counts the redirects already followed for this request."""
    if hops >= MAX_REDIRECTS:
        raise PartnerProtocolError(
            f"partner redirected more than {MAX_REDIRECTS} times in a row (HTTP {status})"
        )
    if not location or any(ch < " " or ch in "\\\x7f" for ch in location):
        raise PartnerProtocolError(f"partner redirected (HTTP {status}) without a usable Location")
    try:
        target = current.join(URL(location)).with_fragment(None)
    except ValueError:
        raise PartnerProtocolError(
            f"partner redirected (HTTP {status}) to an invalid URL"
        ) from None
    if target.raw_user is not None or origin_of(target) != origin_of(current):
        raise PartnerProtocolError(
            f"partner redirected (HTTP {status}) to another origin "
            f"({target.scheme}://{target.raw_host}:{target.port}); redirects are followed with "
            "credentials only on the same scheme, host and port"
        )
    return target


class RedirectMemory:
    """Paths the partner redirected before: later requests go to the final path at once (a
    partner that redirects every page would otherwise cost two requests a page)."""

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}

    def apply(self, url: URL) -> URL:
        """`url` with a remembered path replaced."""
        path = self._paths.get(url.raw_path)
        return url if path is None else url.with_path(path, encoded=True, keep_query=True)

    def remember(self, requested: URL, final: URL) -> None:
        """A request for `requested` ended at `final`: remember a pure path move."""
        if requested.raw_path != final.raw_path and requested.raw_query_string == (
            final.raw_query_string
        ):
            self._paths[requested.raw_path] = final.raw_path
