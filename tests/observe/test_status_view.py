"""How `status` shows pulls (pure): one row per pull and shard at any width from 80 columns, long
texts cut with `…` and shown whole under the table, numbers never cut; JSON and TSV lines for
scripts; one line per changed row when following."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from producer.observe.status import PullStatus, State
from producer.observe.status_view import (
    TSV_FIELDS,
    StatusPrinter,
    cut,
    nothing_since,
    render_rows,
    rounded_count,
    script_line,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=40)
problems = st.none() | st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300
)


@st.composite
def statuses(draw: st.DrawFn) -> PullStatus:
    count = draw(st.integers(1, 8))
    index = draw(st.integers(0, count - 1))
    return PullStatus(
        pull_id=draw(names),
        partner=draw(names),
        module=draw(st.sampled_from(["tokens", "locations", "cdrs"])),
        shard=f"{index + 1}/{count}",
        state=draw(st.sampled_from(["running", "complete", "interrupted", "incomplete"])),
        last_event_at=(NOW - timedelta(seconds=draw(st.integers(0, 10**6)))).isoformat(),
        objects_emitted=draw(st.integers(0, 10**7)),
        total_reported=draw(st.none() | st.integers(0, 10**7)),
        rate_per_s=draw(st.none() | st.floats(0, 10**5)),
        eta_s=draw(st.none() | st.floats(0, 10**6)),
        windows_ended=set(range(draw(st.integers(0, 99)))),
        windows_total=draw(st.none() | st.integers(0, 99)),
        last_problem=draw(problems),
    )


@settings(max_examples=200)
@given(pulls=st.lists(statuses(), min_size=1, max_size=6), width=st.integers(80, 260))
def test_one_row_per_pull_within_the_width_and_every_cut_text_whole_below(
    pulls: list[PullStatus], width: int
) -> None:
    lines, notes = render_rows(pulls, NOW, width)
    assert len(lines) == 1 + len(pulls)  # a header, then one line per pull and shard
    assert all(len(line) <= width for line in lines), lines
    for status in pulls:
        # Numbers are never cut: exact, or rounded where exact counts do not fit.
        written = {f"{status.objects_emitted:,}/", f"{rounded_count(status.objects_emitted)}/"}
        assert any(objects in line for line in lines[1:] for objects in written)
        problem = " ".join((status.last_problem or "").split())  # a cell is one line
        if problem and not any(problem in line for line in lines):
            assert any(note.endswith(f": {problem}") for note in notes)


@given(pulls=st.lists(statuses(), min_size=1, max_size=4))
def test_wide_keeps_every_text_whole(pulls: list[PullStatus]) -> None:
    lines, notes = render_rows(pulls, NOW, 80, wide=True)
    assert notes == []
    for status in pulls:
        assert any(status.pull_id in line for line in lines)


def test_a_long_problem_is_cut_in_the_row_and_whole_below() -> None:
    problem = "window_short: " + "99,980 distinct objects for a reported total of 100,000 " * 4
    pull = PullStatus("20261204T185706Z-f4e207", "other", "locations", "1/1",
                      last_event_at=NOW.isoformat(), objects_emitted=99_980,
                      total_reported=100_000, last_problem=problem)  # fmt: skip
    (header, row), (note,) = render_rows([pull], NOW, 80)
    assert header.split()[:1] == ["pull"]
    assert "99,980/100,000" in row
    assert row.endswith("…")
    assert note == f"20261204T185706Z-f4e207 other/locations: {problem.strip()}"


STATES: tuple[State, ...] = ("running", "interrupted")


def test_counts_too_wide_for_80_columns_are_rounded_not_cut() -> None:
    # A found case: 8 shards, ten million objects, "interrupted": exact, it needs 87 columns.
    pulls = [
        PullStatus(f"pull-{i}", "partner", "tokens", f"{i}/8", state=state,
                   last_event_at=(NOW - timedelta(days=11)).isoformat(),
                   objects_emitted=10_000_000, total_reported=10_000_000, rate_per_s=99_999.0,
                   eta_s=10**6, windows_ended=set(range(99)), windows_total=99, last_problem="x")
        for i, state in enumerate(STATES, start=1)
    ]  # fmt: skip
    lines, _ = render_rows(pulls, NOW, 80)
    assert all(len(line) <= 80 for line in lines), lines
    assert all("10.0M/10.0M" in line for line in lines[1:])
    wide, _ = render_rows(pulls, NOW, 80, wide=True)
    assert all("10,000,000/10,000,000" in line for line in wide[1:])


@given(st.floats(0, 10**14))
def test_a_rounded_count_keeps_three_digits_in_five_characters(n: float) -> None:
    text = rounded_count(n)
    assert len(text) <= 5
    unit = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}.get(text[-1], 1.0)
    value = float(text.rstrip("kMGT")) * unit
    assert abs(value - n) <= max(0.5, n * 0.005)


def test_a_pull_id_is_cut_in_the_middle_to_keep_its_end() -> None:
    assert cut("20261204T185706Z-f4e207", 12, middle=True) == "202612…4e207"
    assert cut("short", 12, middle=True) == "short"
    assert cut("a problem", 1) == "…"


def test_scripts_get_one_line_per_pull_and_shard() -> None:
    pulls = [
        PullStatus("p1", "sbx", "tokens", "1/2", last_event_at=NOW.isoformat(),
                   last_problem="retry: HTTP 503\tand a tab"),
        PullStatus("p1", "sbx", "tokens", "2/2", last_event_at=NOW.isoformat()),
    ]  # fmt: skip
    records = [json.loads(script_line(p, NOW, "json")) for p in pulls]
    assert [r["shard"] for r in records] == ["1/2", "2/2"]
    assert {"at", "state", "age_s", "objects_emitted", "last_problem"} <= set(records[0])
    printer = StatusPrinter("tsv", wide=False, since=NOW, scope=(None, None))
    header, *rows = printer.whole(pulls, NOW)
    assert header.split("\t") == list(TSV_FIELDS)
    assert [len(row.split("\t")) for row in rows] == [len(TSV_FIELDS)] * 2
    assert rows[0].split("\t")[-1] == "retry: HTTP 503 and a tab"  # a pull's shards in order


def test_following_prints_a_line_only_for_rows_that_changed() -> None:
    pull = PullStatus("p", "sbx", "tokens", "1/1", last_event_at=NOW.isoformat())
    printer = StatusPrinter("text", wide=False, since=NOW, scope=(None, None))
    assert len(printer.changes([pull], NOW)) == 1
    assert printer.changes([pull], NOW + timedelta(seconds=1)) == []  # older, not changed
    pull.objects_emitted = 500
    (line,) = printer.changes([pull], NOW)
    assert " pull=p partner=sbx module=tokens " in line
    assert " objects=500 " in line


def test_nothing_to_show_says_since_when() -> None:
    assert nothing_since(NOW, None, None) == "no pulls since 2026-12-04 12:00:00Z"
    assert nothing_since(NOW, "sbx", None) == "no pulls of partner sbx since 2026-12-04 12:00:00Z"
    printer = StatusPrinter("text", wide=False, since=NOW, scope=("sbx", "cdrs"))
    assert printer.whole([], NOW) == [
        "no pulls of partner sbx of module cdrs since 2026-12-04 12:00:00Z"
    ]
