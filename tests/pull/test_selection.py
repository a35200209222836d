"""Which of a page's records a window produces (`producer.pull.selection.WindowSelection`), pure.

A window drops what it already has durable in Kafka, unchanged (step-backs and re-read passes
meet objects again), and nothing else: objects whose `last_updated` lies outside
`[date_from, date_to)` are produced and counted apart. Everything it was listed, valid or not,
counts toward its total.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.kafka.digests import key_hash, value_hash
from producer.kafka.inventory import WrittenBefore
from producer.ocpi.paging.reader import PageReader
from producer.pull.records import MessageBuilder, PageMessages
from producer.pull.selection import WindowSelection
from sandbox.generator import ObjectFactory, Party

FACTORY = ObjectFactory("tokens", 1, Party())
READER = PageReader("2.2.1", "tokens", None)
BUILDER = MessageBuilder(partner="sbx", module="tokens", ocpi_version="2.2.1", pull_id="p")
DATE_FROM = datetime(2024, 1, 1, tzinfo=UTC)
DATE_TO = datetime(2024, 1, 2, tzinfo=UTC)
INSIDE = "2024-01-01T12:00:00Z"


def token(index: int, last_updated: str = INSIDE, **changes: Any) -> dict[str, Any]:
    item = FACTORY.render(index, "2.2.1", 0)
    item["last_updated"] = last_updated
    item.update(changes)
    return item


def build(items: list[Any], offset: int = 0) -> PageMessages:
    read = READER.read([orjson.dumps(item) for item in items])
    return BUILDER.build(read, offset, "https://partner.example/tokens", None)


def selection(date_from: datetime | None = DATE_FROM) -> WindowSelection:
    return WindowSelection(date_from, DATE_TO)


def produced(window: WindowSelection, items: list[Any], *, acked: bool = True) -> list[str]:
    """Keys of what the window produces from a page of `items` (acknowledged by Kafka at once,
    unless `acked` is False)."""
    messages = build(items)
    window.listed(messages)
    kept = window.select(messages)
    assert len(kept.objects) == len(kept.keys) == len(kept.positions)
    if acked:
        window.made_durable(kept)
    return kept.keys


def key(item: dict[str, Any]) -> str:
    return f"{item['country_code']}/{item['party_id']}/{item['uid']}/{item['type']}"


def test_a_page_read_again_unchanged_produces_nothing_more() -> None:
    window = selection()
    page = [token(i) for i in range(5)]
    assert produced(window, page) == [key(t) for t in page]
    # A step-back (or a second pass) meets the same objects: nothing is produced twice.
    assert produced(window, page) == []
    assert window.received == window.distinct == 5


def test_an_object_met_again_before_its_first_copy_is_acknowledged_is_produced_again() -> None:
    """Seen at commit: a page fetched ahead holds X, a step-back page meets X before the first
    page is acknowledged. Skipping X there would let the checkpoint pass X while its only copy
    may still be lost."""
    window = selection()
    page = [token(i) for i in range(3)]
    assert produced(window, page, acked=False) == [key(t) for t in page]
    assert produced(window, page[1:]) == [key(t) for t in page[1:]]
    assert produced(window, page) == [key(page[0])]
    assert window.received == 3


def test_an_object_that_changed_since_it_was_read_is_produced_again() -> None:
    window = selection()
    page = [token(i) for i in range(3)]
    produced(window, page)
    again = [page[0], token(1, whitelist="NEVER"), page[2]]
    assert produced(window, again) == [key(page[1])]
    # Still one object per key: the window's count is of distinct objects.
    assert window.received == 3


@pytest.mark.parametrize(
    ("last_updated", "inside"),
    [
        # The canonical form.
        ("2024-01-01T00:00:00Z", True),  # date_from is inclusive
        ("2023-12-31T23:59:59Z", False),
        ("2024-01-01T23:59:59Z", True),
        ("2024-01-02T00:00:00Z", False),  # date_to is exclusive
        ("2025-06-01T00:00:00Z", False),
        # Other forms partners send (all read as epoch seconds by the page reader).
        ("2024-01-01T23:59:59.999Z", True),
        ("2024-01-01T23:59:59.999999999Z", True),
        ("2024-01-02T00:00:00.000Z", False),
        ("2023-12-31T23:59:59.5Z", False),
        ("2024-01-01T00:00:00.000Z", True),
        ("2024-01-01T00:00:00", True),  # no zone: UTC (OCPI)
        ("2024-01-02T00:00:00", False),
        ("2023-12-31T23:59:59", False),
    ],
)
def test_objects_outside_the_window_are_produced_and_counted_apart(
    last_updated: str, inside: bool
) -> None:
    window = selection()
    item = token(1, last_updated)
    assert produced(window, [item]) == [key(item)]
    assert window.out_of_window == (0 if inside else 1)
    # Either way it filled a slot of this window's list.
    assert window.received == 1


@pytest.mark.parametrize(
    ("last_updated", "contradicts"),
    [
        ("2024-01-02T00:00:00Z", False),  # at date_to: a partner reading it as inclusive
        ("2024-01-02T00:00:00.500Z", False),  # the same second
        ("2024-01-02T00:00:01Z", True),  # after it: the filter is off
        ("2023-12-31T23:59:59Z", True),  # before date_from, however its bound is read
    ],
)
def test_objects_the_filter_excludes_however_its_bounds_are_read_say_it_is_off(
    last_updated: str, contradicts: bool
) -> None:
    window = selection()
    produced(window, [token(1, last_updated)])
    assert window.out_of_window == 1
    assert window.filter_contradicted == (1 if contradicts else 0)
    # Only what lies before date_from says the filter runs early (by how much).
    assert window.early_by_s == (1 if last_updated.startswith("2023") else 0)


def test_without_date_from_everything_before_date_to_is_inside() -> None:
    window = selection(date_from=None)
    items = [token(0, "1999-01-01T00:00:00Z"), token(1, "2024-01-01T23:59:59.5Z")]
    outside = token(2, "2024-01-02T00:00:00Z")
    assert produced(window, [*items, outside]) == [key(t) for t in [*items, outside]]
    assert window.out_of_window == 1


def test_dead_letters_are_passed_on_and_counted_as_received() -> None:
    window = selection()
    invalid = token(1, whitelist="SOMETIMES")
    keyless = token(2)
    del keyless["uid"]
    page = [token(0), invalid, keyless]
    messages = build(page)
    window.listed(messages)
    kept = window.select(messages)
    assert kept.keys == [key(page[0])]
    assert len(kept.dead_letters) == 2
    assert window.received == 3
    window.made_durable(kept)
    # Met again, they are still the same two objects, and in Kafka already.
    again = build(page)
    window.listed(again)
    assert window.select(again).dead_letters == []
    assert window.received == 3


def test_a_key_listed_twice_in_a_page_fills_two_slots() -> None:
    window = selection()
    first = token(0)
    page = [first, token(1), first]
    produced(window, page)
    assert window.distinct == 2
    assert window.received == 3  # the partner's list had three entries


def test_a_page_read_again_does_not_count_its_duplicate_again() -> None:
    window = selection()
    first = token(0)
    page = [first, token(1), first]
    produced(window, page)
    produced(window, page)  # a re-read of the same page (a step-back, or a second pass)
    assert window.received == 3


def test_what_this_pull_committed_before_a_resume_is_not_produced_again() -> None:
    page = [token(i) for i in range(6)]
    messages = build(page)
    committed = {
        key_hash(k): value_hash(m.value)
        for k, m in zip(messages.keys[:4], messages.objects[:4], strict=True)
    }
    window = WindowSelection(DATE_FROM, DATE_TO, written_before=WrittenBefore(objects=committed))
    assert produced(window, page) == [key(t) for t in page[4:]]
    # Committed or not, every object was received: it counts toward the window's total.
    assert window.received == 6
    # A committed object that changed since is a different value: it is produced.
    changed = token(0, uid_note="x")
    changed["uid"] = page[0]["uid"]
    assert produced(window, [changed]) == [key(changed)]


def test_a_2_1_1_window_leaves_its_lead_second_to_the_window_before() -> None:
    """A 2.1.1 window asks from a second before its own start: objects of that second are
    listed (they count toward its total), produced by the window they belong to, and not out of
    the window either."""
    window = WindowSelection(DATE_FROM, DATE_TO, asked_from=DATE_FROM - timedelta(seconds=1))
    lead = token(0, "2023-12-31T23:59:59Z")
    own = token(1, "2024-01-01T00:00:00Z")
    before = token(2, "2023-12-31T23:59:58Z")
    assert produced(window, [lead, own, before]) == [key(own), key(before)]
    assert window.received == 3
    assert window.out_of_window == 1


@settings(max_examples=60, deadline=None)
@given(
    pages=st.lists(st.lists(st.integers(0, 12), max_size=8), min_size=1, max_size=5),
    committed_upto=st.none() | st.integers(0, 12),
)
def test_made_durable_counts_each_key_new_to_the_window_once(
    pages: list[list[int]], committed_upto: int | None
) -> None:
    # A key is new the first time one of its pages is made durable, unless the pull wrote it
    # before a resume (whatever its value then); a key a page lists twice counts once.
    items = {i: token(i) for i in range(13)}
    before = (
        None
        if committed_upto is None
        else WrittenBefore(objects={key_hash(key(items[i])): 1 for i in range(committed_upto)})
    )
    window = WindowSelection(DATE_FROM, DATE_TO, written_before=before)
    seen: set[int] = set(range(committed_upto or 0))
    for page in pages:
        expected = len(set(page) - seen)
        seen.update(page)
        assert window.made_durable(build([items[i] for i in page])) == expected
