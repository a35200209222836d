"""Commit units for exactly-once delivery: what one Kafka transaction holds, and when it is due.

A unit gathers the records of pages whose window checkpoint covers them (objects, dead letters,
digests) together with those checkpoints, and is committed as one transaction. It is due after
`max_pages` pages or `max_ms` since its first record, whichever comes first. Keyed records (a
window's checkpoint, the plan) replace an earlier record with the same key in the same unit: only
the latest position of a window need travel. Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from producer.kafka.records import OutMessage

Routed = tuple[str, OutMessage]  # (topic, record)


@dataclass(frozen=True, slots=True)
class PageNote:
    """A page a unit holds, as its `page_fetched` event tells it once the unit is committed."""

    window: int
    offset: int
    count: int  # objects
    dead: int  # dead letters
    total: int | None
    new: int | None = None  # objects the pull writes for the first time


@dataclass(frozen=True, slots=True)
class UnitPolicy:
    """When a unit is due: `max_pages` pages, `max_bytes` bytes of records, or `max_ms` after
    its first record. (A unit waits while one commits: two units' bytes are in flight at most.)"""

    max_pages: int = 20
    max_ms: int = 2000
    max_bytes: int = 16 * 1024 * 1024

    def due(self, pages: int, age_s: float | None, size: int = 0) -> bool:
        """Whether a unit of `pages` pages and `size` bytes, opened `age_s` ago (None: empty),
        should commit."""
        if age_s is None:
            return False
        return self.full(pages, size) or age_s * 1000 >= self.max_ms

    def full(self, pages: int, size: int) -> bool:
        """Whether a unit of `pages` pages and `size` bytes takes no more."""
        return pages >= self.max_pages or size >= self.max_bytes


@dataclass(slots=True)
class CommitUnit:
    """The records of one transaction: plain records in the order added, then the latest record
    of every key given as keyed (checkpoints). `notes` (the pages it holds) travel with it for
    whoever is told of the commit."""

    sequence: int
    opened_at: float | None = None
    pages: int = 0
    size: int = 0  # bytes of the pages' records
    plain: list[Routed] = field(default_factory=list)
    keyed: dict[tuple[str, bytes], OutMessage] = field(default_factory=dict)
    notes: list[PageNote] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to commit."""
        return not self.plain and not self.keyed

    def records(self) -> list[Routed]:
        """Every record of the unit, plain ones first (a checkpoint follows what it covers)."""
        return [*self.plain, *((topic, m) for (topic, _), m in self.keyed.items())]

    def marker(self) -> Routed | None:
        """A keyed record of this unit: seeing it read back committed shows the unit committed
        (the values of checkpoint records carry the instant they were made, so they differ)."""
        if not self.keyed:
            return None
        (topic, _), message = next(reversed(self.keyed.items()))
        return topic, message


class UnitAssembler:
    """The open unit, filled by the windows and taken by the committer."""

    def __init__(self, policy: UnitPolicy) -> None:
        self.policy = policy
        self._sequence = 0
        self.open = CommitUnit(self._sequence)

    def add(
        self,
        now: float,
        *,
        plain: Iterable[Routed] = (),
        keyed: Iterable[Routed] = (),
        pages: int = 0,
        size: int = 0,
        notes: Iterable[PageNote] = (),
    ) -> None:
        """Add records (and the pages they come from, `size` bytes) to the open unit, all or
        nothing."""
        unit = self.open
        before = unit.empty
        unit.plain.extend(plain)
        for topic, message in keyed:
            unit.keyed.pop((topic, message.key), None)  # the latest goes last
            unit.keyed[(topic, message.key)] = message
        unit.pages += pages
        unit.size += size
        unit.notes.extend(notes)
        if before and not unit.empty:
            unit.opened_at = now

    def due(self, now: float) -> bool:
        """Whether the open unit should be committed now."""
        unit = self.open
        age = None if unit.empty or unit.opened_at is None else now - unit.opened_at
        return self.policy.due(unit.pages, age, unit.size)

    def wait_s(self, now: float) -> float | None:
        """How long until the open unit is due by age (None: it is empty)."""
        unit = self.open
        if unit.empty or unit.opened_at is None:
            return None
        return max(0.0, unit.opened_at + self.policy.max_ms / 1000 - now)

    def take(self) -> CommitUnit:
        """Seal the open unit (returned) and open the next one."""
        taken = self.open
        self._sequence += 1
        self.open = CommitUnit(self._sequence)
        return taken

    def discard(self) -> None:
        """Drop the open unit: what it holds is to be read again."""
        self.take()
