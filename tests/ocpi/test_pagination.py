"""The window walk (ocpi/paging/pagination.py) against a simulated partner whose list shrinks.

The simulation is the model the walk's proof assumes: a list ordered stably, from which objects
are removed at arbitrary moments (updates past the pinned date_to, deletions) while pages are in
flight and complete in any order. Every object that was there at the start and never removed
must be seen, whatever the interleaving, in link mode (sequential) and offset mode (fan-out).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.errors import PaginationLoop
from producer.ocpi.paging.pagination import MIN_PATCH_MARGIN, WindowWalk
from producer.ocpi.paging.walk import PageOutcome, PageRequest
from producer.ocpi.protocol.links import plain_offset_of


class ShrinkingList:
    """A partner's filtered list: objects 0..n-1, some removed over time."""

    def __init__(self, size: int, page_cap: int, *, plain_links: bool) -> None:
        self.items = list(range(size))
        self.page_cap = page_cap
        self.plain_links = plain_links
        self.seen: set[int] = set()

    def serve(self, offset: int, limit: int) -> tuple[list[int], PageOutcome]:
        limit = min(limit, self.page_cap)
        page = self.items[offset : offset + limit]
        self.seen.update(page)
        total = len(self.items)
        has_next = bool(page) and offset + len(page) < total
        next_offset = offset + len(page)
        outcome = PageOutcome(
            count=len(page),
            total=total,
            limit=limit,
            next_url=f"https://partner/next?offset={next_offset}" if has_next else None,
            next_offset=next_offset if (has_next and self.plain_links) else None,
        )
        return page, outcome

    def remove_at(self, position: int) -> int:
        return self.items.pop(position)


def run_walk(
    partner: ShrinkingList,
    walk: WindowWalk,
    data: st.DataObject,
    limit: int,
    removal_budget: int,
) -> set[int]:
    """Drive the walk to completion. Each request is served at one random moment and delivered
    at a later one, in any order, with removals in between: a page served early (with a larger
    total) can arrive after one served later."""
    requested: list[PageRequest] = []
    served: list[tuple[PageRequest, PageOutcome]] = []
    removed: set[int] = set()
    steps = 0
    while not walk.finished:
        steps += 1
        assert steps < 5000, "walk did not converge"
        requested.extend(walk.next_requests())
        assert requested or served, "walk is waiting on nothing"
        action = data.draw(st.integers(0, 2), label="action")
        if action == 0 and removal_budget and partner.items:
            position = data.draw(st.integers(0, len(partner.items) - 1), label="position")
            removed.add(partner.remove_at(position))
            removal_budget -= 1
        elif (action == 1 and requested) or not served:
            index = data.draw(st.integers(0, len(requested) - 1), label="serve which")
            request = requested.pop(index)
            served.append((request, partner.serve(request.offset, request.limit or limit)[1]))
        else:
            # The runner may handle several finished pages before it asks what is next.
            for _ in range(data.draw(st.integers(1, len(served)), label="deliver how many")):
                index = data.draw(st.integers(0, len(served) - 1), label="deliver which")
                request, outcome = served.pop(index)
                walk.on_page(request, outcome)
                walk.on_acked(request.request_id)
    return removed


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(0, 120),
    page_cap=st.integers(1, 17),
    limit=st.integers(1, 20),
    max_ahead=st.integers(1, 5),
    plain_links=st.booleans(),
    removals=st.integers(0, 25),
    data=st.data(),
)
def test_every_survivor_is_seen(
    size: int,
    page_cap: int,
    limit: int,
    max_ahead: int,
    plain_links: bool,
    removals: int,
    data: st.DataObject,
) -> None:
    partner = ShrinkingList(size, page_cap, plain_links=plain_links)
    walk = WindowWalk(max_ahead=max_ahead, max_patches=10_000)
    removed = run_walk(partner, walk, data, limit, removals)
    survivors = set(range(size)) - removed
    assert survivors <= partner.seen
    assert walk.complete
    assert walk.checkpoint_is_final


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 120),
    page_cap=st.integers(1, 17),
    cut=st.integers(0, 119),
    removals=st.integers(0, 25),
    data=st.data(),
)
def test_resume_from_a_checkpoint_loses_nothing(
    size: int, page_cap: int, cut: int, removals: int, data: st.DataObject
) -> None:
    """Stop a walk anywhere, remove more objects, resume from its checkpoint: nothing missed."""
    partner = ShrinkingList(size, page_cap, plain_links=True)
    first = WindowWalk(max_ahead=3, max_patches=10_000)
    removed: set[int] = set()
    pages = 0
    while not first.finished and pages <= cut:
        for request in first.next_requests():
            _, outcome = partner.serve(request.offset, request.limit or page_cap)
            first.on_page(request, outcome)
            first.on_acked(request.request_id)
            pages += 1
    seen_before = set(partner.seen)
    checkpoint = first.checkpoint
    for _ in range(min(removals, len(partner.items))):
        position = data.draw(st.integers(0, len(partner.items) - 1))
        removed.add(partner.remove_at(position))
    if first.checkpoint_is_final:
        resumed_seen: set[int] = set()
    else:
        partner.seen = set()
        second = WindowWalk(checkpoint.end, checkpoint.total, max_ahead=2, max_patches=10_000)
        removed |= run_walk(partner, second, data, page_cap, 5)
        resumed_seen = partner.seen
    survivors = set(range(size)) - removed
    assert survivors <= seen_before | resumed_seen


def test_sequential_walk_follows_links_verbatim() -> None:
    partner = ShrinkingList(25, 10, plain_links=False)
    walk = WindowWalk()
    urls: list[str | None] = []
    while not walk.finished:
        for request in walk.next_requests():
            urls.append(request.url)
            _, outcome = partner.serve(request.offset, request.limit or 10)
            walk.on_page(request, outcome)
    assert urls == [None, "https://partner/next?offset=10", "https://partner/next?offset=20"]
    assert not walk.offset_mode
    assert walk.first_total == 25


def test_fan_out_starts_once_links_are_plain_offsets() -> None:
    partner = ShrinkingList(100, 10, plain_links=True)
    walk = WindowWalk(max_ahead=4)
    first = walk.next_requests()
    assert [r.offset for r in first] == [0]
    walk.on_page(first[0], partner.serve(0, 10)[1])
    ahead = walk.next_requests()
    assert [r.offset for r in ahead] == [10, 20, 30, 40]
    assert all(r.url is None for r in ahead)


def test_fan_out_advances_by_what_the_server_returns_not_the_asked_limit() -> None:
    """Asking 1000 from a partner capped at 7: pages step by 7 (X-Limit), never by 1000."""
    partner = ShrinkingList(50, 7, plain_links=True)
    walk = WindowWalk(max_ahead=3)
    offsets: list[int] = []
    while not walk.finished:
        for request in walk.next_requests():
            offsets.append(request.offset)
            walk.on_page(request, partner.serve(request.offset, request.limit or 1000)[1])
    assert sorted(set(offsets)) == list(range(0, 50, 7))
    assert partner.seen == set(range(50))


def test_shrinking_total_steps_back_by_the_drop() -> None:
    partner = ShrinkingList(30, 10, plain_links=False)
    walk = WindowWalk()
    (request,) = walk.next_requests()
    walk.on_page(request, partner.serve(0, 10)[1])
    partner.remove_at(3)
    partner.remove_at(3)
    (request,) = walk.next_requests()
    walk.on_page(request, partner.serve(request.offset, request.limit or 10)[1])
    (patch,) = walk.next_requests()
    assert patch.offset == 8  # 10 - a drop of 2, fetched from the first URL, not a link
    assert patch.url is None
    assert walk.patches == 1


def test_a_step_back_page_extends_the_chain_and_may_meet_its_links_again() -> None:
    """Found by the property test: after a drop, the patch page ends before the old anchor's
    end but stands for ground beyond it; and re-reading that ground meets the same next links."""
    partner = ShrinkingList(4, 1, plain_links=False)
    walk = WindowWalk()
    (request,) = walk.next_requests()
    walk.on_page(request, partner.serve(0, 1)[1])
    (request,) = walk.next_requests()
    # object 1; next link offset=2
    walk.on_page(request, partner.serve(request.offset, request.limit or 1)[1])
    partner.remove_at(0)
    partner.remove_at(0)  # objects 2 and 3 are now at positions 0 and 1
    (request,) = walk.next_requests()
    # offset 2: empty, total 2
    walk.on_page(request, partner.serve(request.offset, request.limit or 1)[1])
    (patch,) = walk.next_requests()
    assert (patch.offset, patch.url) == (0, None)
    # object 2, next link offset=1 again
    walk.on_page(patch, partner.serve(patch.offset, patch.limit or 1)[1])
    (request,) = walk.next_requests()
    assert request.url == "https://partner/next?offset=1"
    walk.on_page(request, partner.serve(1, 1)[1])
    assert walk.complete
    assert partner.seen == {0, 1, 2, 3}


def test_one_shot_link_lost_restarts_at_its_offset() -> None:
    partner = ShrinkingList(30, 10, plain_links=False)
    walk = WindowWalk()
    (request,) = walk.next_requests()
    walk.on_page(request, partner.serve(0, 10)[1])
    (request,) = walk.next_requests()
    assert request.url is not None
    walk.on_link_lost(request)
    (retry,) = walk.next_requests()
    assert (retry.offset, retry.url) == (10, None)


def test_repeated_link_is_a_loop() -> None:
    walk = WindowWalk()
    (request,) = walk.next_requests()
    same = PageOutcome(count=5, total=100, limit=5, next_url="https://p/a", next_offset=None)
    walk.on_page(request, same)
    (request,) = walk.next_requests()
    walk.on_page(request, same)
    (request,) = walk.next_requests()
    with pytest.raises(PaginationLoop) as caught:
        walk.on_page(request, same)
    assert caught.value.reason == "repeated_link"


def feed(walk: WindowWalk, outcomes: list[PageOutcome]) -> None:
    for outcome in outcomes:
        (request,) = walk.next_requests()
        walk.on_page(request, outcome)


def test_ping_pong_between_two_links_is_a_loop() -> None:
    urls = ["https://p/a" if i % 2 else "https://p/b" for i in range(10)]
    outcomes = [
        PageOutcome(count=5, total=100, limit=5, next_url=u, next_offset=None) for u in urls
    ]
    with pytest.raises(PaginationLoop):
        feed(WindowWalk(), outcomes)


def test_empty_pages_with_a_next_link_forever_is_a_loop() -> None:
    outcomes = [
        PageOutcome(count=0, total=None, limit=10, next_url=f"https://p/{i}", next_offset=None)
        for i in range(10)
    ]
    with pytest.raises(PaginationLoop) as caught:
        feed(WindowWalk(), outcomes)
    assert caught.value.reason == "empty_pages_with_link"


def test_full_page_without_link_ends_but_is_flagged() -> None:
    walk = WindowWalk(probe_past_end="off")
    (request,) = walk.next_requests()
    walk.on_page(
        request, PageOutcome(count=10, total=10, limit=10, next_url=None, next_offset=None)
    )
    assert walk.complete
    assert walk.ended_full_without_link


def test_probe_past_end_continues_after_a_full_page_until_an_empty_one() -> None:
    walk = WindowWalk(probe_past_end=True)
    (request,) = walk.next_requests()
    # P2 partner: total = page length, never a Link.
    walk.on_page(
        request, PageOutcome(count=10, total=10, limit=10, next_url=None, next_offset=None)
    )
    assert not walk.complete
    (request,) = walk.next_requests()
    assert request.offset == 10
    walk.on_page(request, PageOutcome(count=4, total=4, limit=10, next_url=None, next_offset=None))
    assert walk.complete


def test_impossible_total_is_ignored() -> None:
    walk = WindowWalk()
    (request,) = walk.next_requests()
    walk.on_page(
        request, PageOutcome(count=10, total=50, limit=10, next_url="u1", next_offset=None)
    )
    (request,) = walk.next_requests()
    # Total 3 while this page alone holds 10 objects at offset 10: not a real drop.
    walk.on_page(request, PageOutcome(count=10, total=3, limit=10, next_url="u2", next_offset=None))
    (request,) = walk.next_requests()
    assert request.url == "u2"


def test_checkpoint_waits_for_acknowledgements_in_chain_order() -> None:
    partner = ShrinkingList(40, 10, plain_links=True)
    walk = WindowWalk(max_ahead=4)
    (first,) = walk.next_requests()
    walk.on_page(first, partner.serve(0, 10)[1])
    ahead = walk.next_requests()
    for request in ahead:
        walk.on_page(request, partner.serve(request.offset, request.limit or 10)[1])
    assert walk.complete
    walk.on_acked(ahead[1].request_id)
    assert walk.checkpoint.end == 0
    walk.on_acked(first.request_id)
    assert walk.checkpoint.end == 10
    walk.on_acked(ahead[0].request_id)
    assert walk.checkpoint.end == 30
    walk.on_acked(ahead[2].request_id)
    assert walk.checkpoint_is_final


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://p.example/ocpi/tokens?date_to=X&offset=50&limit=10", 50),
        ("https://p.example/ocpi/tokens/?offset=50&date_to=X", 50),
        ("https://p.example/ocpi/tokens?offset=50", None),  # filter dropped
        ("https://p.example/ocpi/tokens?offset=50&date_to=X&extra=1", None),
        ("https://p.example/ocpi/hub/page/abc", None),
        ("https://p.example/ocpi/tokens?offset=-5&date_to=X", None),
        ("https://other.example/ocpi/tokens?offset=50&date_to=X", None),
    ],
)
def test_plain_offset_links(link: str, expected: int | None) -> None:
    from yarl import URL

    window = URL("https://p.example/ocpi/tokens?date_to=X&offset=0&limit=10")
    assert plain_offset_of(URL(link), window) == expected


def test_in_offset_mode_a_step_back_is_a_short_patch_around_the_shift() -> None:
    partner = ShrinkingList(1000, 100, plain_links=True)
    walk = WindowWalk(max_ahead=1)
    (request,) = walk.next_requests()
    walk.on_page(request, partner.serve(0, 100)[1])
    (request,) = walk.next_requests()
    walk.on_page(request, partner.serve(request.offset, 100)[1])  # objects 100-199
    partner.remove_at(3)
    partner.remove_at(3)  # two read objects left: 200 and 201 now sit at 198 and 199
    (request,) = walk.next_requests()
    walk.on_page(request, partner.serve(request.offset, 100)[1])  # offset 200: 202-301
    (patch,) = walk.next_requests()
    # The drop is 2: the objects then at 200-201 now sit at 198-199. The patch starts a margin
    # earlier and reaches as far past the old end: a few objects, not a page.
    assert patch.url is None
    assert patch.offset == 198 - MIN_PATCH_MARGIN
    assert patch.limit == 200 + MIN_PATCH_MARGIN - patch.offset
    walk.on_page(patch, partner.serve(patch.offset, patch.limit or 100)[1])
    assert walk.patches == 1
    while not walk.finished:
        for request in walk.next_requests():
            walk.on_page(request, partner.serve(request.offset, request.limit or 100)[1])
    assert walk.complete
    assert set(partner.items) <= partner.seen


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), every=st.sampled_from([5, 20, 100]))
def test_churn_costs_what_it_changes(seed: int, every: int) -> None:
    """Removals at random positions while a 10,000-object list is read with fan-out: the
    survivors are all seen, and the objects served stay close to the list's size (a step-back
    re-reads what shifted, not a page)."""
    rng = random.Random(seed)
    partner = ShrinkingList(10_000, 100, plain_links=True)
    walk = WindowWalk(max_ahead=4)
    queue: list[PageRequest] = []
    served = removed = 0
    while not walk.finished:
        queue.extend(walk.next_requests())
        request = queue.pop(rng.randrange(len(queue)))
        page, outcome = partner.serve(request.offset, request.limit or 100)
        served += len(page)
        walk.on_page(request, outcome)
        walk.on_acked(request.request_id)
        if served // every > removed and partner.items:
            partner.remove_at(rng.randrange(len(partner.items)))
            removed += 1
    assert set(partner.items) <= partner.seen
    assert served <= 10_000 * 1.15 + 10 * removed


def _page(
    count: int, total: int | None, limit: int | None, asked: int | None = None
) -> PageOutcome:
    return PageOutcome(count, total, limit, next_url=None, next_offset=None, asked=asked)


def _feed(walk: WindowWalk, pages: list[PageOutcome]) -> list[int]:
    """Serve `pages` in order to whatever the walk asks; the offsets it asked for."""
    offsets: list[int] = []
    for outcome in pages:
        (request,) = walk.next_requests()
        offsets.append(request.offset)
        walk.on_page(request, outcome)
        walk.on_acked(request.request_id)
    return offsets


def test_auto_reads_past_a_full_first_page_whose_total_is_its_own_length() -> None:
    """One full page, total = its length, no Link ever: P2 looks exactly like this, so auto
    asks the next offset; an empty page ends it."""
    walk = WindowWalk()
    assert _feed(walk, [_page(10, 10, 10), _page(0, 10, 10)]) == [0, 10]
    assert walk.complete
    assert walk.total_unreliable is None


def test_auto_trusts_a_full_last_page_of_a_partner_that_links() -> None:
    walk = WindowWalk()
    first = PageOutcome(10, 20, 10, next_url="https://p/next", next_offset=None)
    assert _feed(walk, [first, _page(10, 20, 10)]) == [0, 10]
    assert walk.complete


def test_auto_reads_on_without_any_paging_header_until_an_empty_page() -> None:
    """No X-Total-Count, no X-Limit, no Link (a server slicing a list): neither a full nor a
    short page shows the end, only an empty one does."""
    walk = WindowWalk()
    pages = [_page(1000, None, None, 1000), _page(500, None, None, 1000), _page(0, None, None)]
    assert _feed(walk, pages) == [0, 1000, 1500]
    assert walk.complete
    assert walk.found_by_probing == 500
    assert walk.first_total is None


def test_auto_reads_past_a_page_short_of_its_own_total() -> None:
    walk = WindowWalk()
    assert _feed(walk, [_page(4, 10, 10), _page(6, 10, 10)]) == [0, 4]
    assert walk.complete


def test_more_objects_than_the_total_make_totals_unreliable() -> None:
    """Sandbox --broken-total: every page says its own length. The second full page ends past
    the total: from then on totals are ignored and only an empty page ends the window."""
    walk = WindowWalk()
    pages = [_page(10, 10, 10), _page(10, 10, 10), _page(4, 4, 10), _page(0, 0, 10)]
    assert _feed(walk, pages) == [0, 10, 20, 24]
    assert walk.complete
    assert walk.total_unreliable is not None
    assert walk.first_total is None
    assert walk.checkpoint.total is None


def test_a_page_beyond_the_count_taken_before_makes_totals_unreliable() -> None:
    """The plan counted 1 (its probe asked limit=1 of a partner whose total is the page
    length); the first page alone holds 10: the list cannot have grown."""
    walk = WindowWalk(earlier_total=1)
    assert _feed(walk, [_page(10, 10, 10), _page(0, 0, 10)]) == [0, 10]
    assert walk.total_unreliable is not None


def test_off_takes_a_page_without_link_for_the_end() -> None:
    walk = WindowWalk(probe_past_end="off")
    assert _feed(walk, [_page(1000, None, None, 1000)]) == [0]
    assert walk.complete


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(0, 120),
    page_cap=st.integers(1, 17),
    limit=st.integers(1, 20),
    headers=st.sampled_from(["none", "limit", "broken-total"]),
)
def test_auto_reads_every_object_whatever_headers_are_missing(
    size: int, page_cap: int, limit: int, headers: str
) -> None:
    """A partner without Link (and without totals, or with broken ones) is read whole."""
    items = list(range(size))
    walk = WindowWalk()
    seen: set[int] = set()
    steps = 0
    while not walk.finished:
        steps += 1
        assert steps < 1000
        for request in walk.next_requests():
            asked = request.limit or limit
            page = items[request.offset : request.offset + min(asked, page_cap)]
            seen.update(page)
            total = {"none": None, "limit": None, "broken-total": len(page)}[headers]
            x_limit = None if headers == "none" else min(asked, page_cap)
            walk.on_page(request, _page(len(page), total, x_limit, asked))
            walk.on_acked(request.request_id)
    assert seen == set(items)
