"""What every window of one pull shares: where to read, where to write, what to count."""

from __future__ import annotations

import asyncio
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
from producer.ocpi.client import OcpiHttp
from producer.ocpi.reader import PageReader
from producer.ocpi.repair import LinkRepair
from producer.ocpi.versions import ModuleEndpoint
from producer.pull.counters import PullCounters
from producer.pull.records import MessageBuilder
from producer.pull.stop import StopRequest


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
