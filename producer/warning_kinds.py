"""Every kind of warning the puller reports, in one registry, and `--fail-on`'s choice among them.

A warning is a line of a pull's summary (`warnings`: `kind: message`, or the bare kind) or a
`warning` progress event (its `code`). A new kind is added here, once: `--fail-on` then accepts
it, and tests/test_warning_kinds.py checks that the code emits no kind missing here and that
README lists each one. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from schemas.dialects import Dialect

ALL: Final = "all"


@dataclass(frozen=True, slots=True)
class WarningKind:
    """One kind of warning. A `notice` says what the run did, not that the data is in doubt:
    `--fail-on all` leaves notices out. A `family` has members `<name>_<member>` (a dialect)."""

    name: str
    meaning: str
    notice: bool = False
    members: tuple[str, ...] = ()


KINDS: Final[tuple[WarningKind, ...]] = (
    # -- the partner's pagination and counts
    WarningKind("no_total_count", "the partner sends no X-Total-Count: one window, no count check"),
    WarningKind(
        "partner_ignores_date_filters",
        "date-filtered counts came back as the total: one window, no narrowing",
    ),
    WarningKind("window_short", "a window got fewer objects than its total and was read again"),
    WarningKind("pagination_loop", "a window's pagination did not converge (the reason follows)"),
    WarningKind("repeated_link", "the partner's next link repeated an earlier one"),
    WarningKind("empty_pages_with_link", "empty pages kept coming with a next link"),
    WarningKind("offset_ignored", "the partner answered every offset with the same page"),
    WarningKind("no_progress", "a window kept shrinking faster than step-backs caught up"),
    WarningKind("too_many_pages", "far more pages than the reported total allows"),
    WarningKind("next_link_repaired", "next links unusable as given; read by offset instead"),
    WarningKind("link_without_rel", "a lone Link without rel was taken as the next page"),
    WarningKind(
        "partner_needed_probe_past_end",
        "objects were found only by reading past a full page without Link",
    ),
    WarningKind(
        "full_page_without_link",
        "a window ended on a full page without Link (--probe-past-end off)",
    ),
    WarningKind(
        "total_unreliable",
        "a page ended beyond X-Total-Count: totals ignored, the window read to an empty page",
    ),
    WarningKind(
        "out_of_window",
        "objects came with a last_updated outside the window asked for (produced all the same)",
    ),
    WarningKind(
        "window_narrowed",
        "the partner lists in another order at every request: read in date pieces of a page",
    ),
    WarningKind(
        "partner_clock_skew",
        "the partner's clock is more than 5 s off ours (date_to pinned by it when it lags)",
    ),
    WarningKind(
        "dialect",
        "objects written in a dialect of the spec (dialect_<name> for one of them)",
        members=tuple(d.value for d in Dialect),
    ),
    # -- Kafka
    WarningKind(
        "kafka_outage_replay",
        "the broker was lost during the pull: windows were read again from before it",
    ),
    WarningKind("kafka_lost_commits", "exactly-once: committed pages were lost and read again"),
    WarningKind(
        "kafka_lost_writes",
        "Kafka no longer held writes it acknowledged: the windows concerned were written again",
    ),
    WarningKind("tombstones_not_emitted", "--emit-tombstones could not tombstone (the reason)"),
    # -- what the run did
    WarningKind("resumed", "the pull went on from its checkpoints", notice=True),
    WarningKind(
        "resumed_with_other_flags",
        "flags that the resumed plan pins were ignored",
        notice=True,
    ),
    WarningKind("already_complete", "the pull id was complete before: nothing to do", notice=True),
    WarningKind(
        "no_previous_pull",
        "--incremental without a complete pull before: everything is pulled",
        notice=True,
    ),
    WarningKind("stored_plan", "plan: a pull with this id would use its stored plan", notice=True),
)

BY_NAME: Final[Mapping[str, WarningKind]] = {kind.name: kind for kind in KINDS}
_LEADING_NAME = re.compile(r"[a-z][a-z0-9_]*")
# The summary line of a pull id completed before (summary.ALREADY_COMPLETE) carries no kind.
_ALREADY_COMPLETE_TEXT = "pull was already complete"


def every_name() -> list[str]:
    """Every name `--fail-on` accepts: the kinds and each member of a family."""
    names = [kind.name for kind in KINDS]
    names += [f"{k.name}_{member}" for k in KINDS for member in k.members]
    return names


def kind_of(warning: str) -> str:
    """The kind of a summary warning line (`kind: message`, `kind`, `dialect <name>: …`)."""
    if warning.startswith(_ALREADY_COMPLETE_TEXT):
        return "already_complete"
    found = _LEADING_NAME.match(warning)
    if found is None:
        return warning
    name = found.group(0)
    rest = warning[found.end() :]
    family = BY_NAME.get(name)
    if family is not None and family.members and rest.startswith(" "):
        member = _LEADING_NAME.match(rest[1:])  # `dialect space_separator: …`
        if member is not None and member.group(0) in family.members:
            return f"{name}_{member.group(0)}"
    return name


def parse_fail_on(text: str) -> tuple[str, ...]:
    """`--fail-on`'s value (`kind,kind`, or `all`) as names; ValueError names what is unknown."""
    chosen = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    if ALL in chosen:
        return (ALL,)
    known = set(every_name())
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValueError(
            f"unknown warning kind {', '.join(unknown)}: one of {', '.join(every_name())}, or {ALL}"
        )
    return chosen


def _chosen(name: str, fail_on: Iterable[str]) -> bool:
    """Whether `--fail-on` names this kind: itself, its family, or `all` (notices aside)."""
    chosen = set(fail_on)
    family = next((k for k in KINDS if k.members and name.startswith(f"{k.name}_")), None)
    kind = BY_NAME.get(name, family)
    if ALL in chosen:
        return kind is None or not kind.notice
    return name in chosen or (family is not None and family.name in chosen)


def failing_warnings(
    fail_on: Iterable[str], summary: Iterable[str], events: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The warnings `--fail-on` turns into a failure, as (kind, text): the summary's lines, then
    the codes of the `warning` events (code → its first message) the summary does not carry."""
    fail_on = tuple(fail_on)
    if not fail_on:
        return []
    found: dict[str, str] = {}
    for line in summary:
        kind = kind_of(line)
        if _chosen(kind, fail_on):
            found.setdefault(kind, line)
    for code, message in events.items():
        if _chosen(code, fail_on) and code not in found:
            found[code] = f"{code}: {message}"
    return list(found.items())
