"""What every window of one pull shares: where to read, where to write, what to count."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from producer.config import PartnerOptions
from producer.kafka.checkpoints import CheckpointStore
from producer.kafka.committer import UnitCommitter
from producer.kafka.inventory import WrittenBefore
from producer.kafka.keystate import KeyState
from producer.kafka.output import KafkaOutput
from producer.kafka.records import PullTopics
from producer.observe.progress import ProgressReporter
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.paging.reader import PageReader
from producer.ocpi.paging.repair import LinkRepair
from producer.ocpi.protocol.versions import ModuleEndpoint
from producer.pull.records import MessageBuilder
from producer.pull.stop import StopRequest
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


@dataclass(slots=True)
class PullContext:
    """What every window of one pull shares."""

    pull_id: str
    partner: str
    endpoint: ModuleEndpoint
    options: PartnerOptions
    limit: int
    pinned_date_to: datetime
    http: OcpiHttp
    kafka: KafkaOutput
    reader: PageReader  # every page's objects, read once (shared with the tombstone catch-up)
    builder: MessageBuilder
    store: CheckpointStore
    progress: ProgressReporter
    topics: PullTopics
    unacked_pages: asyncio.Semaphore
    # Whether the plan's window counts are the partner's X-Total-Count (else there were none).
    totals_reported: bool = True
    counters: PullCounters = field(default_factory=PullCounters)
    keystate: KeyState | None = None  # with --skip-unchanged or --emit-tombstones
    repair: LinkRepair = field(default_factory=LinkRepair)
    # Exactly-once only: the commit units.
    units: UnitCommitter | None = None
    # After a resume: what this pull already has in Kafka (committed, with exactly-once).
    written_before: WrittenBefore | None = None
    # A signal asks the windows to stop fetching and drain (see stop.py).
    stop: StopRequest = field(default_factory=StopRequest)
