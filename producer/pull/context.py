"""What every window of one pull shares (where to read, where to write, what to count), and how
its records reach Kafka: the `Delivery`, chosen once when the pull starts."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from producer.config import PartnerOptions
from producer.kafka.checkpoints import CheckpointStore, StoredState
from producer.kafka.inventory import WrittenBefore
from producer.kafka.keystate import KeyState
from producer.kafka.output import KafkaOutput
from producer.kafka.records import PullTopics
from producer.observe.progress import ProgressReporter
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.paging.pages import PageDriver, WindowPage
from producer.ocpi.paging.reader import PageReader
from producer.ocpi.paging.repair import LinkRepair
from producer.ocpi.protocol.versions import ModuleEndpoint
from producer.pull.budget import ByteBudget
from producer.pull.counters import PullCounters
from producer.pull.records import MessageBuilder, PageMessages
from producer.pull.stop import StopRequest
from producer.pull.summary import PullSummary
from producer.pull.verdict import WindowResult
from producer.pull.window_state import WindowState
from schemas.records import PullPlan, WindowSpec


@dataclass(frozen=True, slots=True)
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
    unacked_bytes: ByteBudget  # at-least-once: what the unacknowledged pages weigh
    delivery: Delivery  # at-least-once or exactly-once
    # Whether the plan's window counts are the partner's X-Total-Count (else there were none).
    totals_reported: bool = True
    counters: PullCounters = field(default_factory=PullCounters)
    keystate: KeyState | None = None  # with --skip-unchanged or --emit-tombstones
    repair: LinkRepair = field(default_factory=LinkRepair)
    # After a resume: what this pull already has in Kafka (committed, with exactly-once).
    written_before: WrittenBefore | None = None
    # A signal asks the windows to stop fetching and drain (see stop.py).
    stop: StopRequest = field(default_factory=StopRequest)

    def knowing(self, written_before: WrittenBefore) -> PullContext:
        """The same pull, its windows knowing what it already has in Kafka (read back)."""
        return dataclasses.replace(self, written_before=written_before)


class Delivery(Protocol):
    """How a pull's records reach Kafka: at-least-once (at_least_once.py) or exactly-once
    (exactly_once.py). The window loop drives the walk and hands each pass's pages over; it never
    asks which delivery it has."""

    @property
    def committed_within_s(self) -> float | None:
        """Reads of what the pull wrote see committed records only, waiting up to this long for
        the last ones (exactly-once); None: every acknowledged record counts."""
        ...

    async def start(self) -> CheckpointStore:
        """Ready to write: where the pull's checkpoints are recorded and read."""
        ...

    async def stop(self) -> None:
        """Done writing (whatever the pull's outcome)."""
        ...

    async def read_pass(
        self,
        ctx: PullContext,
        window: WindowState,
        driver: PageDriver,
        messages_of: Callable[[WindowPage], PageMessages],
        tally: set[int] | None,
    ) -> None:
        """One pass of one window: every page the driver brings has its records sent; a page is
        done once they are durable, and the window's checkpoint then passes it and is recorded.
        Returns once every page sent is done (`tally`: what a date piece lists, counted apart)."""
        ...

    async def pull(
        self,
        ctx: PullContext,
        plan: PullPlan,
        windows: list[WindowSpec],
        state: StoredState,
        summary: PullSummary,
    ) -> list[WindowResult]:
        """This shard's windows, and whatever recovery they need before their results count
        (writes a broker lost, commits it forgot)."""
        ...
