"""Commit units (producer/kafka/units.py): when a transaction is due, and what it holds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.kafka.records import OutMessage
from producer.kafka.units import UnitAssembler, UnitPolicy


def record(key: str, value: str = "v") -> OutMessage:
    return OutMessage(key.encode(), value.encode(), [])


@pytest.mark.parametrize(
    ("pages", "age_s", "due"),
    [
        (0, None, False),  # empty: never due
        (50, None, False),
        (0, 0.0, False),  # a checkpoint alone waits for the time limit
        (0, 1.999, False),
        (0, 2.0, True),
        (19, 1.0, False),
        (20, 0.0, True),  # pages first
        (25, 0.1, True),
        (3, 60.0, True),
    ],
)
def test_a_unit_is_due_at_its_page_count_or_its_age(
    pages: int, age_s: float | None, due: bool
) -> None:
    assert UnitPolicy(max_pages=20, max_ms=2000).due(pages, age_s) is due


@pytest.mark.parametrize(
    ("pages", "size", "due"),
    [(1, 999, False), (1, 1000, True), (19, 0, False), (20, 0, True), (0, 5000, True)],
)
def test_a_unit_is_due_at_its_bytes_too(pages: int, size: int, due: bool) -> None:
    policy = UnitPolicy(max_pages=20, max_ms=2000, max_bytes=1000)
    assert policy.due(pages, 0.0, size) is due
    assert policy.full(pages, size) is due


def test_a_unit_counts_the_bytes_of_its_pages() -> None:
    units = UnitAssembler(UnitPolicy(max_pages=20, max_ms=10_000, max_bytes=100))
    units.add(0.0, plain=[("t", record("a"))], pages=1, size=60)
    assert not units.due(0.0)
    units.add(0.0, plain=[("t", record("b"))], pages=1, size=40)
    assert units.due(0.0)
    assert units.take().size == 100
    assert units.open.size == 0


def test_the_age_counts_from_the_first_record() -> None:
    units = UnitAssembler(UnitPolicy(max_pages=5, max_ms=1000))
    assert not units.due(100.0)
    assert units.wait_s(100.0) is None
    units.add(10.0, plain=[("t", record("a"))], pages=1)
    units.add(10.8, plain=[("t", record("b"))], pages=1)
    assert units.wait_s(10.8) == pytest.approx(0.2)
    assert not units.due(10.9)
    assert units.due(11.0)


def test_a_key_given_twice_keeps_its_latest_record_after_the_plain_ones() -> None:
    units = UnitAssembler(UnitPolicy())
    units.add(0.0, plain=[("objects", record("o1"))], keyed=[("cp", record("w1", "at-10"))])
    units.add(0.1, plain=[("objects", record("o2"))], keyed=[("cp", record("plan", "p"))])
    units.add(0.2, keyed=[("cp", record("w1", "at-20"))], pages=2, notes=["page"])
    unit = units.take()
    assert [(t, m.key, m.value) for t, m in unit.records()] == [
        ("objects", b"o1", b"v"),
        ("objects", b"o2", b"v"),
        ("cp", b"plan", b"p"),
        ("cp", b"w1", b"at-20"),
    ]
    assert unit.marker() == ("cp", record("w1", "at-20"))
    assert unit.pages == 2
    assert unit.notes == ["page"]


def test_take_opens_the_next_unit_and_discard_drops_the_open_one() -> None:
    units = UnitAssembler(UnitPolicy())
    units.add(0.0, keyed=[("cp", record("w"))])
    first = units.take()
    assert not first.empty
    assert units.open.empty
    assert units.open.sequence == first.sequence + 1
    units.add(1.0, plain=[("t", record("x"))])
    units.discard()
    assert units.open.empty
    assert units.open.marker() is None


@settings(max_examples=200, deadline=None)
@given(
    adds=st.lists(
        st.tuples(
            st.lists(st.sampled_from("abcdef"), max_size=4),
            st.lists(st.sampled_from("wxyz"), max_size=2),
            st.integers(0, 3),
        ),
        max_size=30,
    ),
    max_pages=st.integers(1, 10),
)
def test_taking_whenever_due_loses_and_repeats_nothing(
    adds: list[tuple[list[str], list[str], int]], max_pages: int
) -> None:
    units = UnitAssembler(UnitPolicy(max_pages=max_pages, max_ms=10_000))
    taken = []
    now = 0.0
    for sequence, (plain, keyed, pages) in enumerate(adds):
        now += 0.5
        units.add(
            now,
            plain=[("o", record(f"{k}{sequence}")) for k in plain],
            keyed=[("cp", record(k, str(sequence))) for k in keyed],
            pages=pages,
        )
        if units.due(now):
            unit = units.take()
            assert unit.pages >= max_pages or now - (unit.opened_at or now) >= 10
            taken.append(unit)
    taken.append(units.take())
    plain_out = [m.key for u in taken for t, m in u.records() if t == "o"]
    assert plain_out == [f"{k}{i}".encode() for i, (p, _, _) in enumerate(adds) for k in p]
    assert sum(u.pages for u in taken) == sum(p for _, _, p in adds)
    # The last record of every key is in the unit that took the last add of that key.
    for key in "wxyz":
        adds_of_key = [i for i, (_, k, _) in enumerate(adds) if key in k]
        if adds_of_key:
            values = [m.value for u in taken for t, m in u.records() if m.key == key.encode()]
            assert values[-1] == str(adds_of_key[-1]).encode()
