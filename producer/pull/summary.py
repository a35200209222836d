"""The outcome of one partner module's pull: the summary line, and the events that end a pull."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from producer.errors import IncompletePullError, PullError
from producer.observe.progress import ProgressReporter
from producer.ocpi.http.clock import SkewEstimate
from producer.ocpi.http.concurrency import ConcurrencySummary
from producer.ocpi.paging.repair import LinkRepair
from producer.pull.counters import PullCounters
from producer.pull.verdict import PullVerdict
from schemas.dialects import DESCRIPTIONS, Dialect
from schemas.records import PullPlan

# The warning of a pull id that was completed before (the text summary says so plainly).
ALREADY_COMPLETE = "pull was already complete; nothing to do"


def new_pull_id() -> str:
    """A sortable, unique pull id: start time plus randomness."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(slots=True)
class PullSummary:
    """The outcome of one partner module's pull (printed as the JSON summary line)."""

    pull_id: str
    partner: str
    module: str | None
    objects_emitted: int = 0
    pages: int = 0
    dead_lettered: int = 0
    retries: int = 0
    total_reported: int | None = None
    duration_s: float = 0.0
    complete: bool = False
    ocpi_version: str | None = None
    kind: str = "full"
    date_from: str | None = None
    date_to: str | None = None
    windows: int = 0
    windows_incomplete: int = 0
    shortfall: int = 0
    step_backs: int = 0
    narrowed_windows: int = 0
    planning_requests: int = 0
    partner_order: str | None = None
    duplicate_keys: int = 0
    out_of_window: int = 0
    found_by_probing: int = 0
    replayed_windows: int = 0
    replayed_objects: int = 0
    resent_objects: int = 0
    skipped_unchanged: int = 0
    tombstones: int = 0
    tombstones_skipped: str | None = None
    link_repairs: int = 0
    ocpi_version_reason: str | None = None
    concurrency_min: int | None = None
    concurrency_max: int | None = None
    concurrency_final: int | None = None
    dialects: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    shard_index: int = 0
    shard_count: int = 1
    pull_complete_all_shards: bool | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)

    def take_counts(self, progress: ProgressReporter, retries: int) -> None:
        """What was acknowledged and retried so far."""
        self.objects_emitted = progress.objects_emitted
        self.pages = progress.pages
        self.dead_lettered = progress.dead_lettered
        self.retries = retries

    def take_concurrency(self, concurrency: ConcurrencySummary) -> None:
        """The requests in flight the partner got over the pull (its limiter's permits)."""
        self.concurrency_min = concurrency.minimum
        self.concurrency_max = concurrency.maximum
        self.concurrency_final = concurrency.final

    def apply(self, verdict: PullVerdict, counters: PullCounters) -> None:
        """The pull's verdict and counts."""
        self.windows_incomplete = verdict.windows_incomplete
        self.shortfall = verdict.shortfall
        self.complete = verdict.complete
        self.step_backs = counters.step_backs
        self.duplicate_keys = counters.duplicate_keys
        self.out_of_window = counters.out_of_window
        self.narrowed_windows = counters.narrowed_windows
        self.partner_order = counters.partner_order
        self.found_by_probing = counters.found_by_probing
        self.skipped_unchanged = counters.skipped_unchanged
        self.resent_objects = counters.resent_objects
        if counters.totals_unreliable:
            self.total_reported = None  # a page contradicted it: the partner's totals mean nothing
        self.warnings.extend(p for p in verdict.problems if p not in self.warnings)

    def take_warnings(self, progress: ProgressReporter) -> None:
        """Every warning told (logged and sent as an event) is in the summary too, once per
        kind, as `kind: the first message`."""
        for kind, message in progress.warnings.items():
            if not any(_names(warning, kind) or message in warning for warning in self.warnings):
                self.warnings.append(f"{kind}: {message}")

    def incomplete_message(self) -> str:
        """The one line an incomplete pull ends with."""
        return (
            f"pull {self.pull_id} of {self.partner}/{self.module} is incomplete: "
            f"{self.windows_incomplete} of {self.windows} windows fell short by {self.shortfall} "
            "objects; resume or run it again"
        )

    def fail(self, error: PullError) -> None:
        """A pull that ended in `error`."""
        self.complete = False
        self.error = str(error)
        self.error_kind = error.kind
        self.exit_code = error.exit_code


def _names(warning: str, kind: str) -> bool:
    """Whether a summary warning is of `kind` (`dialect_x` is written `dialect x: …`)."""
    if kind.startswith("dialect_"):
        return warning.startswith(f"dialect {kind.removeprefix('dialect_')}:")
    return warning == kind or warning.startswith((f"{kind}:", f"{kind} "))


def warn_about_partner(
    summary: PullSummary, counters: PullCounters, repair: LinkRepair, progress: ProgressReporter
) -> None:
    """Warnings about the partner's pagination that the counters reveal."""
    summary.link_repairs = repair.repairs
    summary.dialects = dict(sorted(counters.dialects.items()))
    for name, count in summary.dialects.items():
        example = counters.dialect_examples.get(name, "")
        text = DESCRIPTIONS[Dialect(name)]
        summary.warnings.append(f"dialect {name}: {count} objects ({text}; e.g. {example})")
        progress.warning(
            f"dialect_{name}", f"{count} objects written in a dialect: {text} (e.g. {example})"
        )
    if repair.repairs:
        summary.warnings.append(f"next_link_repaired: {repair.first_repaired}")
        progress.warning(
            "next_link_repaired",
            f"{repair.repairs} next link(s) could not be used as given (the first: "
            f"{repair.first_repaired}); those pages were read by offset on the endpoint",
        )
    if repair.links_without_rel:
        _warn(
            summary,
            progress,
            "link_without_rel",
            f"{repair.links_without_rel} next link(s) came as a lone Link without rel; taken "
            "as the next page",
        )
    if counters.found_by_probing:
        _warn(
            summary,
            progress,
            "partner_needed_probe_past_end",
            f"{counters.found_by_probing} objects were found only by probing past a full "
            "page without Link: this partner's totals or links are broken (a total that is "
            "the page length, and so never a next link)",
        )
    if counters.full_page_without_link:
        _warn(
            summary,
            progress,
            "full_page_without_link",
            f"{counters.full_page_without_link} window(s) ended on a full page with no Link; "
            "if the partner's totals are broken (the page length, and so never a next link), pull "
            "with --probe-past-end",
        )


def _warn(summary: PullSummary, progress: ProgressReporter, kind: str, message: str) -> None:
    """A warning in the summary (`kind: message`) and as a `warning` event."""
    summary.warnings.append(f"{kind}: {message}")
    progress.warning(kind, message)


def warn_about_clock(skew: SkewEstimate | None, plan: PullPlan, progress: ProgressReporter) -> None:
    """`partner_clock_skew`: the partner's clock is notably off ours, and what that means."""
    if skew is None or not skew.notable:
        return
    if not skew.credible:
        progress.warning(
            "partner_clock_skew",
            f"the partner's answers (their {skew.source}) put its clock {skew.describe()}: not "
            "a clock's drift but wrong timestamps (a time zone? a constant?); date_to is ours",
        )
        return
    meaning = (
        "date_to was pinned by its clock"
        if skew.behind_s and plan.date_to_behind_s
        else (
            "changes it made while the pull ran may carry a last_updated before date_to and be "
            f"missed by windows already read: pull again incrementally with "
            f"--incremental-overlap-s {int(skew.behind_s) + 60} or more"
            if skew.behind_s
            else "changes it made shortly before date_to by our clock belong to the next pull"
        )
    )
    progress.warning(
        "partner_clock_skew",
        f"the partner's clock is {skew.describe()} (from its answers' {skew.source}; "
        f"{round(skew.skew_s)} s): {meaning}",
    )


def report_end(summary: PullSummary, progress: ProgressReporter, duration_s: float) -> None:
    """`pull_completed` with the summary's figures."""
    summary.take_warnings(progress)
    progress.completed(
        complete=summary.complete,
        objects_emitted=summary.objects_emitted,
        pages=summary.pages,
        dead_lettered=summary.dead_lettered,
        retries=summary.retries,
        total_reported=summary.total_reported,
        duration_s=duration_s,
        windows_complete=summary.windows - summary.windows_incomplete,
        windows_incomplete=summary.windows_incomplete,
        shortfall=summary.shortfall,
        skipped_unchanged=summary.skipped_unchanged,
        tombstones=summary.tombstones,
    )


def report_failure(
    summary: PullSummary, progress: ProgressReporter, error: PullError, duration_s: float
) -> None:
    """`pull_failed`, unless `pull_completed(complete=false)` already said it."""
    summary.take_warnings(progress)
    if isinstance(error, IncompletePullError) and error.kind == "incomplete":
        return
    progress.failed(
        reason=error.kind,
        message=str(error),
        objects_emitted=summary.objects_emitted,
        duration_s=duration_s,
        resumable=error.exit_code not in (2, 3),
    )
