"""What every window of one pull shares: where to read, where to write, what to count."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from producer.config import PartnerOptions
from producer.kafka.checkpoints import CheckpointStore
from producer.kafka.committer import UnitCommitter
from producer.kafka.keystate import KeyState
from producer.kafka.output import KafkaOutput
from producer.kafka.records import PullTopics
from producer.observe.progress import ProgressReporter
from producer.ocpi.client import OcpiHttp
from producer.ocpi.reader import PageReader
from producer.ocpi.repair import LinkRepair
from producer.ocpi.versions import ModuleEndpoint
from producer.pull.records import MessageBuilder


@dataclass(slots=True)
class PullCounters:
    """Counts shared by every window of one pull (they end up in the summary)."""

    step_backs: int = 0
    duplicate_keys: int = 0
    found_by_probing: int = 0
    skipped_unchanged: int = 0
    resent_objects: int = 0
    full_page_without_link: int = 0
    # objects produced per dialect (lenient validation), and one example of each
    dialects: Counter[str] = field(default_factory=Counter)
    dialect_examples: dict[str, str] = field(default_factory=dict)


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
    counters: PullCounters = field(default_factory=PullCounters)
    keystate: KeyState | None = None  # with --skip-unchanged or --emit-tombstones
    repair: LinkRepair = field(default_factory=LinkRepair)
    # Exactly-once only: the commit units, and (after a resume) what this pull committed before,
    # as hash((hash(key), hash(value))) of each object.
    units: UnitCommitter | None = None
    committed: frozenset[int] | None = None
