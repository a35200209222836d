"""Walking one window's pages so that no object is skipped: a pure state machine (no I/O).

The shell asks `next_requests()`, fetches those pages, and reports each with `on_page()`. The walk
decides what to fetch next: follow the partner's next link, jump to an offset (fan-out when links
are plain offset URLs), or step back when `X-Total-Count` shrank.

Why stepping back by the shrinkage is enough. With `date_to` pinned, objects can only leave the
filtered list while we page through it (updates move past `date_to`, deletes vanish), so an object
that survives the pull only ever moves to lower positions. Take two pages in offset order, P then Q,
with Q not starting beyond P's end. An object neither page saw must have been after P's end when P
was served and before Q's start when Q was served: it moved left across the gap, which takes at
least as many removals as the gap is wide. Removals show as a drop in the total. So if

    Q.offset <= P.offset + P.count - max(0, P.total - Q.total)          (the chain rule)

for every consecutive pair of a chain of pages that starts at the window's start and ends on the
last page, nothing was skipped, in whatever order the pages were fetched. When the rule fails the
walk fetches a patch page at the required offset (the spec's "offset minus the drop", generalised).
Insertions before the cursor only cause duplicates, which keyed Kafka messages absorb.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from producer.errors import PaginationLoop
from producer.ocpi.paging.loops import LoopGuard
from producer.ocpi.paging.walk import ChainLink, PageOutcome, PageRequest, ProbePastEnd

# Step-backs in a row that never extend the chain: the list shrinks faster than it can be read.
MAX_PATCHES_WITHOUT_PROGRESS = 50
# A patch starts at least this much before where the shrinkage says (it absorbs removals that
# happen while it is on its way).
MIN_PATCH_MARGIN = 4


def probe_mode(setting: ProbePastEnd | bool) -> ProbePastEnd:
    """The probing mode of a setting (`True`/`False` are the older switch's `on`/`off`)."""
    if setting is True:
        return "on"
    if setting is False:
        return "off"
    return setting


class WindowWalk:
    """Decides which pages of one window to fetch until a verified chain reaches the end.

    `start_offset`/`start_total` resume a walk from a checkpoint (the chain rule then treats the
    checkpoint as a page that ended there with that total). `max_ahead` bounds pages in flight;
    fan-out happens only once links are known to be plain offset URLs.
    """

    def __init__(
        self,
        start_offset: int = 0,
        start_total: int | None = None,
        *,
        max_ahead: int = 1,
        probe_past_end: ProbePastEnd | bool = "auto",
        max_patches: int = MAX_PATCHES_WITHOUT_PROGRESS,
        stop_at: int | None = None,
        earlier_total: int | None = None,
    ) -> None:
        self._anchor = ChainLink(-1, start_offset, start_total)
        self._anchor_next_url: str | None = None
        self._max_ahead = max(1, max_ahead)
        self._probe: ProbePastEnd = probe_mode(probe_past_end)
        # A count served before any page of this walk (the plan's): the list only shrinks, so no
        # page may end beyond it.
        self._earlier_total = earlier_total
        # Why the partner's totals cannot be believed (a page ended beyond one), else None; from
        # then on totals are ignored and only an empty page ends the window.
        self.total_unreliable: str | None = None
        # The freshest total known when each request was made: the list it is served from is no
        # longer than that.
        self._total_when_asked: dict[int, int] = {}
        self._largest_page = 0
        self._x_limit: int | None = None
        self._links_seen = False
        self._max_patches = max_patches
        # Re-reading part of the window only (after a broker outage): done once the chain passes it.
        # Objects only move left in a shrinking list, so everything once before `stop_at` is
        # covered by then.
        self._stop_at = stop_at
        self._offset_mode = False
        self._stride: int | None = None
        self._latest_total = start_total
        self._first_total: int | None = None
        self._in_flight: dict[int, PageRequest] = {}
        self._pending: dict[int, tuple[PageRequest, PageOutcome]] = {}
        self._next_id = 0
        self._complete = False
        self._started = False
        self._patches = 0
        self._patches_since_extension = 0
        self._pages = 0
        self._loops = LoopGuard()
        self._chain: deque[ChainLink] = deque()  # chain links not yet acknowledged by Kafka
        self._acked: set[int] = set()
        self._checkpoint = ChainLink(-1, start_offset, start_total)
        self.ended_full_without_link = False
        # Objects that only probing past a full page without Link found (a partner whose
        # totals or links are broken, so --probe-past-end was needed).
        self.found_by_probing = 0
        self._probing = False

    # -- what the shell reads ------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """A verified chain of pages reaches the last page."""
        return self._complete

    @property
    def finished(self) -> bool:
        """Complete and nothing left in flight."""
        return self._complete and not self._in_flight

    @property
    def first_total(self) -> int | None:
        """`X-Total-Count` of the first page of this walk."""
        return self._first_total

    @property
    def latest_total(self) -> int | None:
        """The smallest (freshest, as the list only shrinks) `X-Total-Count` seen."""
        return self._latest_total

    @property
    def offset_mode(self) -> bool:
        """Whether next links are plain offset URLs (so pages can be fetched ahead)."""
        return self._offset_mode

    @property
    def page_size(self) -> int | None:
        """How many objects the partner serves at once: its `X-Limit`, else the largest page
        seen (None before any page held an object)."""
        return self._x_limit or self._largest_page or None

    @property
    def patches(self) -> int:
        """Step-back re-reads and hole fills fetched so far."""
        return self._patches

    @property
    def checkpoint(self) -> ChainLink:
        """The furthest chain position whose pages (and all before) Kafka has acknowledged."""
        return self._checkpoint

    # -- the decisions -------------------------------------------------------------------------

    def _new_request(self, offset: int, url: str | None, limit: int | None = None) -> PageRequest:
        request = PageRequest(self._next_id, offset, url, limit)
        self._next_id += 1
        self._in_flight[request.request_id] = request
        known = self._latest_total if self._latest_total is not None else self._earlier_total
        if known is not None:
            self._total_when_asked[request.request_id] = known
        return request

    def _required_offset(self) -> int:
        """Where the next chain page must start, given the latest known total."""
        anchor = self._anchor
        if anchor.total is None or self._latest_total is None:
            return anchor.end
        return max(0, anchor.end - max(0, anchor.total - self._latest_total))

    def next_requests(self) -> list[PageRequest]:
        """Pages to fetch now (possibly none: wait for in-flight ones)."""
        if self._complete:
            return []
        if not self._started:
            self._started = True
            return [self._new_request(self._anchor.end, None)]
        requests: list[PageRequest] = []
        required = self._required_offset()
        if not self._offset_mode:
            if self._in_flight:
                return []
            if self._anchor_next_url is not None and required == self._anchor.end:
                requests.append(self._new_request(required, self._anchor_next_url))
            else:
                if required != self._anchor.end:
                    self._step_back()
                requests.append(self._new_request(required, None))
            self._anchor_next_url = None
            return requests
        stride = self._stride or 1
        # Only a request still in flight may yet connect; a pending page that could, already did.
        covered = any(
            r.offset <= required < r.offset + (r.limit or stride) for r in self._in_flight.values()
        )
        if not covered:
            if required != self._anchor.end:
                self._step_back()
                requests.append(self._patch(required, stride))
            else:
                requests.append(self._new_request(required, None))
        if self._stride and self._latest_total is not None:
            requests += self._fan_out(required, self._stride, self._latest_total)
        return requests

    def _fan_out(self, required: int, stride: int, total: int) -> list[PageRequest]:
        """Pages ahead of the chain, each starting where the furthest one asked for ends: a
        shrinking list shifts what they hold, which a patch fills, rather than asking again for
        ground a page already on its way covers."""
        outstanding = [*self._in_flight.values(), *(r for r, _ in self._pending.values())]
        ahead = max(
            [required + stride, *(r.offset + stride for r in outstanding if r.limit is None)]
        )
        requests: list[PageRequest] = []
        while len(self._in_flight) + len(self._pending) < self._max_ahead and ahead < total:
            requests.append(self._new_request(ahead, None))
            ahead += stride
        return requests

    def _patch(self, required: int, stride: int) -> PageRequest:
        """A short request for what shifted into the gap (churn costs what it changes).

        The list shrank by `drop` since the anchor was served, so the objects then at
        [anchor.end, anchor.end + drop) now sit at [required, anchor.end). More may leave while the
        patch is on its way: it starts `drop` earlier still (it connects despite as many further
        removals) and reaches as far past the anchor's end, so it extends the chain either way.
        """
        drop = self._anchor.end - required
        margin = max(MIN_PATCH_MARGIN, drop)
        offset = max(0, required - margin)
        limit = self._anchor.end + margin - offset
        if limit >= stride:
            return self._new_request(required, None)  # as much as a page: fetch the page
        return self._new_request(offset, None, limit)

    def _step_back(self) -> None:
        self._patches += 1
        self._patches_since_extension += 1
        # Re-reading ground already covered meets its next links again, legitimately; the
        # patch budget and the page bound still stop a partner that keeps us going back.
        self._loops.forget_links()
        if self._patches_since_extension > self._max_patches:
            raise PaginationLoop(
                "no_progress",
                f"the window kept shrinking under us: {self._patches_since_extension} step-back "
                "re-reads in a row never caught up with it",
            )

    def _is_full(self, outcome: PageOutcome) -> bool:
        """A page holding as many objects as the partner serves at once: `X-Limit`, else the
        `limit` asked for, else the largest page seen."""
        if outcome.count == 0:
            return False
        if outcome.limit is not None and outcome.limit > 0:
            return outcome.count >= outcome.limit
        if outcome.asked is not None and outcome.asked > 0:
            return outcome.count >= outcome.asked
        return outcome.count >= self._largest_page

    def _is_end(self, request: PageRequest, outcome: PageOutcome) -> bool:
        """Whether a page is the last one. A next link says it is not; without one, `off` takes
        the page for the end and `on` reads past a full page. `auto` ends only where something
        shows the end: an empty page; a page that reaches the list's total (a full one only
        when the partner sends next links: a full page whose total is its own length is how
        broken totals look); a short page of a partner that states its page size or links.
        Once totals are shown wrong, only an empty page."""
        if outcome.next_url is not None:
            return False
        if self._probe == "off":
            return True
        full = self._is_full(outcome)
        if self._probe == "on" or outcome.count == 0:
            return not full
        if self.total_unreliable is not None:
            return False  # wrong totals: only an empty page shows the end
        if outcome.total is not None:
            if request.offset + outcome.count < outcome.total:
                return False  # the partner's own total says there is more
            return not full or self._links_seen
        return not full and (self._links_seen or outcome.limit is not None)

    def _believed(self, request: PageRequest, outcome: PageOutcome) -> PageOutcome:
        """The page's outcome with its total dropped once totals are shown to be wrong: a page
        that ends beyond its own total, or beyond a count served before it (the list only
        shrinks), proves the partner's totals are not the list's length (or that the list grows
        under us, which no total can then describe)."""
        end = request.offset + outcome.count
        before = self._total_when_asked.pop(request.request_id, None)
        if outcome.count and self.total_unreliable is None:
            if outcome.total is not None and outcome.total < end:
                self._distrust_totals(
                    f"a page at offset {request.offset} held {outcome.count} objects where "
                    f"its X-Total-Count said {outcome.total}"
                )
            elif before is not None and before < end:
                self._distrust_totals(
                    f"a page at offset {request.offset} held {outcome.count} objects where a "
                    f"count taken before it said {before}"
                )
        if self.total_unreliable is None or outcome.total is None:
            return outcome
        return dataclasses.replace(outcome, total=None)

    def _distrust_totals(self, why: str) -> None:
        self.total_unreliable = why
        self._first_total = None
        self._latest_total = None
        self._anchor = dataclasses.replace(self._anchor, total=None)
        self._chain = deque(dataclasses.replace(link, total=None) for link in self._chain)
        self._checkpoint = dataclasses.replace(self._checkpoint, total=None)
        self._pending = {
            rid: (r, dataclasses.replace(o, total=None)) for rid, (r, o) in self._pending.items()
        }

    def on_page(self, request: PageRequest, outcome: PageOutcome) -> None:
        """Record a fetched page and extend the verified chain where the chain rule allows."""
        self._in_flight.pop(request.request_id, None)
        self._pages += 1
        outcome = self._believed(request, outcome)
        if outcome.next_url is not None:
            self._links_seen = True
        if outcome.limit is not None and outcome.limit > 0:
            self._x_limit = max(self._x_limit or 0, outcome.limit)
        if self._first_total is None and self.total_unreliable is None:
            self._first_total = outcome.total
        if outcome.total is not None:
            # Pages arrive in any order, and one served earlier (with a larger total) may arrive
            # later; the list only shrinks, so the smallest total is the freshest.
            self._latest_total = (
                outcome.total
                if self._latest_total is None
                else min(self._latest_total, outcome.total)
            )
        self._guard_loops(request, outcome)
        if not self._offset_mode and outcome.next_offset is not None and outcome.count > 0:
            stride = outcome.next_offset - request.offset
            if stride > 0:
                self._offset_mode = True
                self._stride = min(stride, outcome.limit) if outcome.limit else stride
        self._pending[request.request_id] = (request, outcome)
        self._connect()
        self._largest_page = max(self._largest_page, outcome.count)

    def on_link_lost(self, request: PageRequest) -> None:
        """A one-shot link can no longer be fetched: re-read from its offset via the first URL."""
        self._in_flight.pop(request.request_id, None)
        self._anchor_next_url = None

    def _guard_loops(self, request: PageRequest, outcome: PageOutcome) -> None:
        self._loops.on_page(request, outcome)
        bound = max(self._first_total or 0, self._latest_total or 0)
        if self._probe != "off":
            # Probing is for partners whose totals are missing or wrong: bound by what arrived.
            bound = max(bound, self._loops.received)
        stride = max(1, self._stride or outcome.limit or outcome.count or 1)
        # Each step back can waste every page fetched ahead of it.
        allowed = 2 * (bound // stride) + (self._max_ahead + 1) * self._patches + 20
        if self._pages > allowed:
            raise PaginationLoop(
                "too_many_pages",
                f"{self._pages} pages fetched for a reported total of {bound}",
            )

    def _connects(self, request: PageRequest, outcome: PageOutcome) -> bool:
        anchor = self._anchor
        drop = 0
        if anchor.total is not None and outcome.total is not None:
            drop = max(0, anchor.total - outcome.total)
        return request.offset <= max(0, anchor.end - drop)

    def _reach(self, request: PageRequest, outcome: PageOutcome) -> int:
        """Where a page ends, in the anchor's positions: the list shrank by the drop in total
        since the anchor was served, so the page's end stands for an end that much further on.
        A page extends the chain only if its reach passes the anchor's end; comparing raw ends
        instead would reject the very step-back page that shrinkage requires (a livelock)."""
        anchor = self._anchor
        end = request.offset + outcome.count
        if anchor.total is not None and outcome.total is not None:
            return end + max(0, anchor.total - outcome.total)
        return end

    def _connect(self) -> None:
        while not self._complete:
            best: tuple[PageRequest, PageOutcome] | None = None
            best_key = (0, 0)
            for request, outcome in self._pending.values():
                if not self._connects(request, outcome):
                    continue
                reach = self._reach(request, outcome)
                if reach <= self._anchor.end and not self._is_end(request, outcome):
                    continue
                key = (reach, -(outcome.total or 0))
                if best is None or key > best_key:
                    best, best_key = (request, outcome), key
            if best is None:
                break
            request, outcome = best
            del self._pending[request.request_id]
            self._anchor = ChainLink(
                request.request_id, request.offset + outcome.count, outcome.total
            )
            self._anchor_next_url = outcome.next_url
            if self._probing:
                self.found_by_probing += outcome.count
            end = self._is_end(request, outcome)
            self._probing = outcome.next_url is None and not end
            self._chain.append(self._anchor)
            self._patches_since_extension = 0
            self._advance_checkpoint()
            if self._stop_at is not None and self._anchor.end >= self._stop_at:
                self._complete = True
                break
            if end:
                self._complete = True
                # Broken totals' signature: a full last page whose "total" is just the page length.
                self.ended_full_without_link = self._is_full(outcome) and (
                    outcome.total is None or outcome.total <= outcome.count
                )
        # Pages wholly behind the chain can never extend it.
        for request_id in [
            rid
            for rid, (r, o) in self._pending.items()
            if self._reach(r, o) <= self._anchor.end and not self._is_end(r, o)
        ]:
            del self._pending[request_id]
            self._acked.discard(request_id)

    # -- acknowledgements ------------------------------------------------------------------------

    def on_acked(self, request_id: int) -> None:
        """Kafka acknowledged every message of this page."""
        if request_id in self._pending or any(c.request_id == request_id for c in self._chain):
            self._acked.add(request_id)
            self._advance_checkpoint()

    def _advance_checkpoint(self) -> None:
        while self._chain and self._chain[0].request_id in self._acked:
            self._checkpoint = self._chain.popleft()
            self._acked.discard(self._checkpoint.request_id)

    def checkpoint_passed(self, request_id: int) -> bool:
        """Whether the checkpoint has passed this page (exactly-once commits only such pages): it
        is neither waiting ahead to join the chain nor a chain link not yet acknowledged. A page
        that fell behind the chain has passed; once the walk is complete nothing waits."""
        if any(link.request_id == request_id for link in self._chain):
            return False
        return self._complete or request_id not in self._pending

    @property
    def checkpoint_is_final(self) -> bool:
        """Complete and every chain page acknowledged: the window is done for good."""
        return self._complete and not self._chain
