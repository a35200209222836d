"""Counts shared by every window of one pull: what the partner's lists showed (they end up in the
summary and its warnings)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.records import WindowCheckpoint


@dataclass(slots=True)
class PullCounters:
    """Counts shared by every window of one pull (they end up in the summary)."""

    step_backs: int = 0
    duplicate_keys: int = 0
    found_by_probing: int = 0
    skipped_unchanged: int = 0
    resent_objects: int = 0
    full_page_without_link: int = 0
    totals_unreliable: int = 0  # windows whose X-Total-Count a page contradicted
    out_of_window: int = 0  # objects listed with a last_updated outside their window
    # of those, objects no reading of the window's bounds allows (the date filter is off)
    filter_contradicted: int = 0
    unstable_windows: int = 0  # windows whose first page came back in another order
    narrowed_windows: int = 0  # windows read in date pieces of one page each
    # Pages looked at for their order: True, ordered by last_updated; False, not.
    pages_by_last_updated: Counter[bool] = field(default_factory=Counter)

    @property
    def partner_order(self) -> str | None:
        """How the partner orders its lists, as far as seen: `unstable` (another order at
        every request), `last_updated`, `other`; None before any page said."""
        if self.unstable_windows:
            return "unstable"
        if self.pages_by_last_updated[False]:
            return "other"
        return "last_updated" if self.pages_by_last_updated[True] else None

    # objects produced per dialect (lenient validation), and one example of each
    dialects: Counter[str] = field(default_factory=Counter)
    dialect_examples: dict[str, str] = field(default_factory=dict)

    def add_earlier(self, checkpoints: Iterable[WindowCheckpoint]) -> None:
        """A resumed pull's figures start with those its windows had reached (a window that
        ended short is read again whole: its figures start afresh)."""
        for checkpoint in checkpoints:
            if checkpoint.done and not checkpoint.complete:
                continue
            self.dialects.update(checkpoint.dialects)
            self.duplicate_keys += checkpoint.duplicate_keys
            self.resent_objects += checkpoint.resent_objects
