"""The one registry of warning kinds (producer/warning_kinds.py): every kind the code emits is in
it, README lists each one, and `--fail-on` picks among them (pure)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from producer.pull.summary import ALREADY_COMPLETE
from producer.warning_kinds import (
    ALL,
    BY_NAME,
    KINDS,
    every_name,
    failing_warnings,
    kind_of,
    parse_fail_on,
)

ROOT = Path(__file__).resolve().parents[1]
# Where a kind is written in the code: a progress warning's code, the start of a summary
# warning, a pagination loop's reason.
EMITTED = (
    re.compile(r"progress\.warning\(\s*f?\"([a-z_]+)"),
    re.compile(r"warnings\.append\(\s*f?\"([a-z_]+)"),
    re.compile(r"return \[\s*f?\"([a-z_]+)[:\"]"),
    re.compile(r"PaginationLoop\(\s*\"([a-z_]+)\""),
)


def emitted_kinds() -> set[str]:
    found = set()
    for path in (ROOT / "producer").rglob("*.py"):
        source = path.read_text()
        for pattern in EMITTED:
            found.update(name.rstrip("_") for name in pattern.findall(source))
    return found


def test_every_kind_the_code_emits_is_registered() -> None:
    emitted = emitted_kinds()
    assert len(emitted) > 15  # the patterns still find the call sites
    assert emitted - set(BY_NAME) == set(), "add these to producer/warning_kinds.py KINDS"


def test_readme_lists_every_kind() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [kind.name for kind in KINDS if f"`{kind.name}`" not in readme]
    assert missing == []


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("kafka_outage_replay: Kafka was unavailable during the pull", "kafka_outage_replay"),
        ("link_without_rel", "link_without_rel"),
        ("dialect space_separator: 3 objects (…)", "dialect_space_separator"),
        ("repeated_link: the partner's next link repeats an earlier one", "repeated_link"),
        ("resumed: 2 of 5 windows already done", "resumed"),
        (ALREADY_COMPLETE, "already_complete"),
    ],
)
def test_a_summary_line_says_its_kind(line: str, kind: str) -> None:
    assert kind_of(line) == kind


def test_fail_on_names_kinds_families_or_all() -> None:
    assert parse_fail_on(" dialect , window_short,dialect") == ("dialect", "window_short")
    assert parse_fail_on("window_short,all") == (ALL,)
    assert "dialect_enum_case" in every_name()
    with pytest.raises(ValueError, match="unknown warning kind nope, typo"):
        parse_fail_on("nope,window_short,typo")


SUMMARY = ["dialect enum_case: 200 objects (…)", "resumed: 1 of 2 windows already done"]
EVENTS = {"dialect_enum_case": "200 objects …", "no_previous_pull": "pulling everything"}


@pytest.mark.parametrize(
    ("fail_on", "kinds"),
    [
        ((), []),
        (("dialect",), ["dialect_enum_case"]),  # a family names each member
        (("dialect_enum_case",), ["dialect_enum_case"]),
        (("dialect_out_of_spec",), []),
        (("no_previous_pull",), ["no_previous_pull"]),  # an event the summary does not carry
        ((ALL,), ["dialect_enum_case"]),  # notices (resumed, no_previous_pull) aside
        (("resumed", "window_short"), ["resumed"]),
    ],
)
def test_which_warnings_fail_a_pull(fail_on: tuple[str, ...], kinds: list[str]) -> None:
    found = failing_warnings(fail_on, SUMMARY, EVENTS)
    assert [kind for kind, _ in found] == kinds
