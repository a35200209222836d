"""What goes to Kafka: records, their headers, the topics a pull writes. Plain values, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import msgspec

Header = tuple[str, bytes]

# What one record may weigh: Kafka's default `message.max.bytes` is 1,048,588 bytes per batch; one
# object per batch must fit with its key, headers and the batch's own overhead.
MAX_MESSAGE_BYTES = 1_000_000


class OutMessage(msgspec.Struct, gc=False):
    """One record to produce; `value=None` is a tombstone. Treated as immutable.

    `headers` may be one list shared by many records (a page's): never mutated. A record's own
    numbered header (`numbered`, `number`: its position in the partner's list) is made only when
    the record is appended to a batch, so a record waiting for its batch holds an int, not a
    list of its own (`record_headers`).
    `partition_key` overrides what the partition is hashed from (checkpoint records of one
    partner module share a partition); by default it is the key, as Kafka's partitioner does.
    (A msgspec Struct: built in C, a quarter of a dataclass's cost per message; it holds no
    cycles, so the garbage collector need not track it.)
    """

    key: bytes
    value: bytes | None
    headers: list[Header]
    partition_key: bytes | None = None
    numbered: str | None = None
    number: int = 0

    def record_headers(self) -> list[Header]:
        """Every header the record carries: the shared ones, then its own numbered one."""
        if self.numbered is None:
            return self.headers
        return [*self.headers, (self.numbered, b"%d" % self.number)]


def records_size(messages: Sequence[OutMessage]) -> int:
    """The bytes of the keys and values of records (what a batch of them weighs, about)."""
    keys = sum(map(len, map(attrgetter("key"), messages)))
    return keys + sum(map(len, filter(None, map(attrgetter("value"), messages))))


def message_bytes(message: OutMessage) -> int:
    """The bytes a record carries (key, value, header names and values)."""
    size = len(message.key) + (0 if message.value is None else len(message.value))
    return size + sum(len(name) + len(value) for name, value in message.record_headers())


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic the puller needs, whether it is compacted, and whether the puller reads it back
    (checkpoints, digests: these need READ besides WRITE)."""

    name: str
    compacted: bool
    read: bool = False


@dataclass(frozen=True, slots=True)
class PullTopics:
    """The topics a pull of one module writes (`<prefix>.<module>` and the shared ones)."""

    objects: str
    deadletter: str
    progress: str
    checkpoints: str
    digests: str

    @classmethod
    def of(cls, prefix: str, module: str) -> PullTopics:
        """The topic names for `module` under `prefix`."""
        return cls(
            objects=f"{prefix}.{module}",
            deadletter=f"{prefix}.deadletter",
            progress=f"{prefix}.progress",
            checkpoints=f"{prefix}.checkpoints",
            digests=f"{prefix}.digests",
        )

    def specs(self, *, digests: bool) -> list[TopicSpec]:
        """What to create: objects, checkpoints and digests are compacted, the rest deleted."""
        specs = [
            TopicSpec(self.objects, compacted=True),
            TopicSpec(self.deadletter, compacted=False),
            TopicSpec(self.progress, compacted=False),
            TopicSpec(self.checkpoints, compacted=True, read=True),
        ]
        if digests:
            specs.append(TopicSpec(self.digests, compacted=True, read=True))
        return specs
