"""Held pages (producer/pull/held.py) with the walk's `checkpoint_passed`: exactly-once commits a
page only together with a checkpoint that covers it.

The partner is the simulated shrinking list of tests/ocpi/test_pagination.py; pages are served and
delivered in any order (fan-out). After every delivery the window releases what the walk's
checkpoint has passed, as the exactly-once window loop does. At every moment a resume from the
checkpoint skips nothing that was not released (committed); in a list that holds still, what lies
before the checkpoint is exactly what was released, so a resume also reads nothing released again.
(In a shrinking list a resume steps back and meets released objects again: the exactly-once resume
skips those it finds committed, see producer/pull/selection.py.)
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from producer.ocpi.paging.pagination import WindowWalk
from producer.ocpi.paging.walk import PageOutcome, PageRequest
from producer.pull.held import HeldPages
from tests.ocpi.test_pagination import ShrinkingList


def test_release_keeps_arrival_order_and_only_settled_pages() -> None:
    held: HeldPages[str] = HeldPages()
    for request_id, page in [(4, "d"), (1, "a"), (3, "c"), (2, "b")]:
        held.hold(request_id, page)
    assert held.release(lambda rid: rid in {1, 3}) == ["a", "c"]
    assert len(held) == 2
    assert held.release(lambda rid: False) == []
    assert held.release(lambda rid: True) == ["d", "b"]
    assert held.drop() == 0


def test_drop_forgets_what_was_held() -> None:
    held: HeldPages[int] = HeldPages()
    held.hold(0, 10)
    held.hold(1, 11)
    assert held.drop() == 2
    assert held.release(lambda rid: True) == []


def test_a_page_ahead_of_the_chain_waits_for_the_gap() -> None:
    walk = WindowWalk(max_ahead=3)
    first = walk.next_requests()[0]
    walk.on_page(first, PageOutcome(10, 100, 10, "https://p/next?offset=10", 10))
    walk.on_acked(first.request_id)
    ahead = walk.next_requests()
    assert [r.offset for r in ahead] == [10, 20, 30]
    # The page at 20 arrives first: it cannot be committed before the one at 10.
    walk.on_page(ahead[1], PageOutcome(10, 100, 10, "https://p/next?offset=30", 30))
    walk.on_acked(ahead[1].request_id)
    assert walk.checkpoint_passed(first.request_id)
    assert not walk.checkpoint_passed(ahead[1].request_id)
    assert walk.checkpoint.end == 10
    walk.on_page(ahead[0], PageOutcome(10, 100, 10, "https://p/next?offset=20", 20))
    walk.on_acked(ahead[0].request_id)
    assert walk.checkpoint_passed(ahead[0].request_id)
    assert walk.checkpoint_passed(ahead[1].request_id)
    assert walk.checkpoint.end == 30


def deliver_and_release(
    partner: ShrinkingList,
    walk: WindowWalk,
    held: HeldPages[list[int]],
    data: st.DataObject,
    limit: int,
    removal_budget: int,
) -> list[int]:
    """Drive the walk to completion, releasing settled pages after each delivery; check the
    resume invariants at every step. Returns every released object, in release order."""
    requested: list[PageRequest] = []
    served: list[tuple[PageRequest, list[int], PageOutcome]] = []
    released: list[int] = []
    steps = 0
    while not walk.finished:
        steps += 1
        assert steps < 5000, "walk did not converge"
        requested.extend(walk.next_requests())
        action = data.draw(st.integers(0, 2), label="action")
        if action == 0 and removal_budget and partner.items:
            position = data.draw(st.integers(0, len(partner.items) - 1), label="position")
            partner.remove_at(position)
            removal_budget -= 1
        elif (action == 1 and requested) or not served:
            request = requested.pop(data.draw(st.integers(0, len(requested) - 1), label="serve"))
            items, outcome = partner.serve(request.offset, request.limit or limit)
            served.append((request, items, outcome))
        else:
            request, items, outcome = served.pop(
                data.draw(st.integers(0, len(served) - 1), label="deliver")
            )
            walk.on_page(request, outcome)
            held.hold(request.request_id, items)
            walk.on_acked(request.request_id)
            for page in held.release(walk.checkpoint_passed):
                released.extend(page)
        # A resume from the checkpoint steps back by what the list lost since the checkpoint's
        # page was served: every object it would then skip was released (committed).
        checkpoint = walk.checkpoint
        drop = 0 if checkpoint.total is None else max(0, checkpoint.total - len(partner.items))
        skipped = partner.items[: max(0, checkpoint.end - drop)]
        assert set(skipped) <= set(released)
    return released


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(0, 120),
    page_cap=st.integers(1, 17),
    limit=st.integers(1, 20),
    max_ahead=st.integers(1, 5),
    plain_links=st.booleans(),
    data=st.data(),
)
def test_in_a_list_that_holds_still_released_is_exactly_what_precedes_the_checkpoint(
    size: int, page_cap: int, limit: int, max_ahead: int, plain_links: bool, data: st.DataObject
) -> None:
    partner = ShrinkingList(size, page_cap, plain_links=plain_links)
    walk = WindowWalk(max_ahead=max_ahead)
    held: HeldPages[list[int]] = HeldPages()
    released = deliver_and_release(partner, walk, held, data, limit, removal_budget=0)
    assert sorted(set(released)) == list(range(size))
    assert len(held) == 0
    assert walk.checkpoint.end == size


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
def test_while_the_list_shrinks_a_resume_from_the_checkpoint_skips_nothing_unreleased(
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
    held: HeldPages[list[int]] = HeldPages()
    released = deliver_and_release(partner, walk, held, data, limit, removals)
    assert set(partner.items) <= set(released)
    assert len(held) == 0
