"""Loop detection over a walk's pages: a next link seen before, empty pages that keep linking. Pure.

Partners whose pagination never ends (a link that repeats, two links that ping-pong, empty pages
with a next link forever) end the window with a `PaginationLoop`, never a hang.
"""

from __future__ import annotations

from collections import deque

from producer.errors import PaginationLoop
from producer.ocpi.paging.walk import PageOutcome, PageRequest

RECENT_URLS_REMEMBERED = 64
MAX_EMPTY_PAGES_WITH_LINK = 3


class LoopGuard:
    """What the walk remembers to tell a loop from progress."""

    def __init__(self) -> None:
        self._recent_urls: deque[str] = deque(maxlen=RECENT_URLS_REMEMBERED)
        self._empty_with_link = 0
        self.received = 0

    def forget_links(self) -> None:
        """A step back re-reads covered ground and meets its next links again, legitimately."""
        self._recent_urls.clear()

    def on_page(self, request: PageRequest, outcome: PageOutcome) -> None:
        """Raise PaginationLoop when this page shows the partner going round in circles."""
        if request.url is not None:
            if request.url in self._recent_urls:
                raise PaginationLoop(
                    "repeated_link", "the partner's next link repeats an earlier one"
                )
            self._recent_urls.append(request.url)
        if outcome.count == 0 and outcome.next_url is not None:
            self._empty_with_link += 1
            if self._empty_with_link >= MAX_EMPTY_PAGES_WITH_LINK:
                raise PaginationLoop(
                    "empty_pages_with_link",
                    f"{self._empty_with_link} empty pages in a row still had a next link",
                )
        elif outcome.count:
            self._empty_with_link = 0
        self.received += outcome.count
