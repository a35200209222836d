"""One module's data as the sandbox partner holds it: a virtual list plus a small mutation log.

Base object *i* was last updated at `base_last_updated(i)`, a non-decreasing function of *i*, so
the list "ordered by last_updated, then index" is simply 0..size-1 and a `date_from`/`date_to`
filter is an index range found by binary search. Mutations (updates, deletes, inserts) are the
only state kept, so memory grows with the number of mutations, never with the dataset size:

* an updated or deleted base object is *displaced*: it leaves its base position;
* an updated or inserted object is *moved*: it sits after every base object, ordered by its new
  `last_updated` (mutations happen "now", and all base history lies in the past).

That reproduces what ocpi/ocpi#373 describes: an update moves the object to the end and shifts
every later page by one. Every mutation is logged, so the exact state at any past instant (the
ground truth a test compares against) is computable on demand.

With `order="created"` the list is ordered by index (creation) instead, as the spec recommends
and some partners do: an updated object keeps its place in an unfiltered list, but still leaves
(or enters) a date-filtered one, because the filter is on `last_updated`.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

from sandbox.generator import INVALID_KINDS, InvalidKind, Module, ObjectFactory, Party, mix64

MutationKind = Literal["update", "touch", "delete", "insert"]
ListOrder = Literal["last_updated", "created"]
DEFAULT_HISTORY_START_MS: Final = 1_577_836_800_000  # 2020-01-01T00:00:00Z
DEFAULT_MUTATION_KINDS: Final[tuple[MutationKind, ...]] = ("update", "delete", "insert")
# Relative weights of random mutations: a busy partner mostly updates. Checked in this order,
# which keeps the default mix's random stream as it always was.
_MUTATION_WEIGHTS: Final[tuple[tuple[MutationKind, float], ...]] = (
    ("insert", 0.15),
    ("delete", 0.15),
    ("update", 0.70),
    ("touch", 0.70),
)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """What a module's data looks like before anything mutates it."""

    module: Module
    size: int
    seed: int = 1
    party: Party = field(default_factory=Party)
    history_start_ms: int = DEFAULT_HISTORY_START_MS
    spacing_ms: int = 1000
    invalid_rate: float = 0.0
    order: ListOrder = "last_updated"


@dataclass(frozen=True, slots=True)
class Mutation:
    """One logged change: `at_ms` is also the object's new `last_updated` (whole seconds)."""

    at_ms: int
    kind: MutationKind
    index: int


@dataclass(frozen=True, slots=True)
class Entry:
    """An object as currently visible: which index, at which `last_updated`, which revision."""

    index: int
    last_updated_ms: int
    revision: int


@dataclass(frozen=True, slots=True)
class TruthEntry:
    """An object that existed at a given instant, as the ground truth reports it."""

    index: int
    last_updated_ms: int
    invalid: InvalidKind | None


class Dataset:
    """The mutable, ordered, filterable list of one module's objects."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.factory = ObjectFactory(spec.module, spec.seed, spec.party)
        self._displaced: list[int] = []  # sorted base indices no longer at their base slot
        self._moved: list[tuple[int, int]] = []  # sorted (last_updated_ms, index)
        self._moved_at: dict[int, int] = {}  # index -> last_updated_ms of its moved entry
        self._revision: dict[int, int] = {}
        self._deleted: set[int] = set()
        self._inserted = 0
        self._log: list[Mutation] = []
        self._events: dict[int, list[Mutation]] = {}
        self._last_mutation_ms = 0
        self._moved_by_index: tuple[tuple[int | None, int | None, int], list[int]] | None = None

    # -- time line of the base data ----------------------------------------------------------

    @property
    def history_end_ms(self) -> int:
        """The instant after which no base object was updated."""
        return self.spec.history_start_ms + self.spec.size * self.spec.spacing_ms

    def base_last_updated(self, index: int) -> int:
        """`last_updated` of untouched base object *index*: whole seconds, non-decreasing."""
        jitter = mix64(self.spec.seed * 1_000_003 + index) % self.spec.spacing_ms
        ms = self.spec.history_start_ms + index * self.spec.spacing_ms + jitter
        return ms - ms % 1000

    def _first_base_at_or_after(self, ms: int) -> int:
        lo, hi = 0, self.spec.size
        while lo < hi:
            mid = (lo + hi) // 2
            if self.base_last_updated(mid) < ms:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def invalid_kind(self, index: int) -> InvalidKind | None:
        """Whether object *index* is sent broken, and how (fixed per object, so retries agree)."""
        rate = self.spec.invalid_rate
        if rate <= 0.0:
            return None
        h = mix64(self.spec.seed * 7_919 + index * 2 + 1)
        if (h >> 11) * (1.0 / (1 << 53)) >= rate:
            return None
        return INVALID_KINDS[h % len(INVALID_KINDS)]

    # -- the filtered, ordered view ----------------------------------------------------------

    def _base_range(self, date_from_ms: int | None, date_to_ms: int | None) -> tuple[int, int]:
        start = 0 if date_from_ms is None else self._first_base_at_or_after(date_from_ms)
        end = self.spec.size if date_to_ms is None else self._first_base_at_or_after(date_to_ms)
        return start, max(start, end)

    def _moved_range(self, date_from_ms: int | None, date_to_ms: int | None) -> tuple[int, int]:
        lo = 0 if date_from_ms is None else bisect.bisect_left(self._moved, (date_from_ms, -1))
        hi = (
            len(self._moved)
            if date_to_ms is None
            else bisect.bisect_left(self._moved, (date_to_ms, -1))
        )
        return lo, max(lo, hi)

    def count(self, date_from_ms: int | None = None, date_to_ms: int | None = None) -> int:
        """How many objects match the filter right now (what `X-Total-Count` reports)."""
        start, end = self._base_range(date_from_ms, date_to_ms)
        displaced = bisect.bisect_left(self._displaced, end) - bisect.bisect_left(
            self._displaced, start
        )
        lo, hi = self._moved_range(date_from_ms, date_to_ms)
        return (end - start - displaced) + (hi - lo)

    def _kth_remaining_base(self, start: int, k: int) -> int:
        """The base index of the k-th (0-based) non-displaced object at or after `start`."""
        before_start = bisect.bisect_left(self._displaced, start)
        candidate = start + k
        while True:
            displaced = bisect.bisect_right(self._displaced, candidate) - before_start
            nxt = start + k + displaced
            if nxt == candidate:
                return candidate
            candidate = nxt

    def page(
        self,
        offset: int,
        limit: int,
        date_from_ms: int | None = None,
        date_to_ms: int | None = None,
    ) -> list[Entry]:
        """Objects [offset, offset+limit) of the filtered list, in its stable order."""
        entries: list[Entry] = []
        if limit <= 0:
            return entries
        if self.spec.order == "created":
            return self._page_by_creation(offset, limit, date_from_ms, date_to_ms)
        start, end = self._base_range(date_from_ms, date_to_ms)
        displaced_in_range = bisect.bisect_left(self._displaced, end) - bisect.bisect_left(
            self._displaced, start
        )
        base_count = end - start - displaced_in_range
        if offset < base_count:
            index = self._kth_remaining_base(start, offset)
            pointer = bisect.bisect_left(self._displaced, index)
            while index < end and len(entries) < limit:
                if pointer < len(self._displaced) and self._displaced[pointer] == index:
                    pointer += 1
                else:
                    entries.append(Entry(index, self.base_last_updated(index), 0))
                index += 1
        if len(entries) < limit:
            lo, hi = self._moved_range(date_from_ms, date_to_ms)
            first = lo + max(0, offset - base_count)
            for lu, index in self._moved[first : min(hi, first + limit - len(entries))]:
                entries.append(Entry(index, lu, self._revision.get(index, 0)))
        return entries

    def _moved_indices(self, date_from_ms: int | None, date_to_ms: int | None) -> list[int]:
        """Indices of moved objects inside the filter, ascending (cached until a mutation)."""
        key = (date_from_ms, date_to_ms, len(self._log))
        cached = self._moved_by_index
        if cached is not None and cached[0] == key:
            return cached[1]
        lo, hi = self._moved_range(date_from_ms, date_to_ms)
        indices = sorted(index for _, index in self._moved[lo:hi])
        self._moved_by_index = (key, indices)
        return indices

    def _page_by_creation(
        self, offset: int, limit: int, date_from_ms: int | None, date_to_ms: int | None
    ) -> list[Entry]:
        # The list is two index-sorted runs merged: untouched base objects in the filter (an
        # index range minus the displaced) and moved objects in the filter (explicit, small).
        start, end = self._base_range(date_from_ms, date_to_ms)
        moved = self._moved_indices(date_from_ms, date_to_ms)
        displaced = self._displaced
        displaced_before_start = bisect.bisect_left(displaced, start)

        def base_before(x: int) -> int:
            cut = min(max(x, start), end)
            return (cut - start) - (bisect.bisect_left(displaced, cut) - displaced_before_start)

        base_total = base_before(end)
        if offset >= base_total + len(moved):
            return []
        # The smallest index x with more than `offset` listed objects at indices <= x.
        lo, hi = 0, self.spec.size + self._inserted
        while lo < hi:
            mid = (lo + hi) // 2
            if base_before(mid + 1) + bisect.bisect_left(moved, mid + 1) > offset:
                hi = mid
            else:
                lo = mid + 1
        taken_base = base_before(lo)
        moved_pos = bisect.bisect_left(moved, lo)
        base_index = self._kth_remaining_base(start, taken_base) if taken_base < base_total else end
        pointer = bisect.bisect_left(displaced, base_index)
        entries: list[Entry] = []
        while len(entries) < limit:
            while (
                base_index < end and pointer < len(displaced) and displaced[pointer] == base_index
            ):
                base_index += 1
                pointer += 1
            next_moved = moved[moved_pos] if moved_pos < len(moved) else None
            if base_index < end and (next_moved is None or base_index < next_moved):
                entries.append(Entry(base_index, self.base_last_updated(base_index), 0))
                base_index += 1
            elif next_moved is not None:
                lu = self._moved_at[next_moved]
                entries.append(Entry(next_moved, lu, self._revision.get(next_moved, 0)))
                moved_pos += 1
            else:
                break
        return entries

    # -- mutations -----------------------------------------------------------------------------

    def _stamp(self, now_ms: int) -> int:
        # Whole seconds (what the partner renders) and never earlier than the previous mutation.
        ms = max(now_ms - now_ms % 1000, self._last_mutation_ms)
        self._last_mutation_ms = ms
        return ms

    def _is_alive(self, index: int) -> bool:
        return index not in self._deleted and index < self.spec.size + self._inserted

    @property
    def population(self) -> int:
        """Objects ever created (the base ones and every insert), deleted ones included."""
        return self.spec.size + self._inserted

    def draw_alive(self, rng: random.Random, count: int) -> list[int]:
        """`count` distinct objects that exist now (fewer if fewer do), drawn from `rng`: a
        seeded draw repeats, and skips what an earlier call deleted."""
        population = self.population
        alive = population - len(self._deleted)
        wanted = min(count, max(0, alive))
        chosen: dict[int, None] = {}
        tries = 0
        while len(chosen) < wanted and tries < 20 * wanted + 100:
            tries += 1
            index = rng.randrange(population)
            if self._is_alive(index):
                chosen[index] = None
        if len(chosen) < wanted:  # mostly deleted: draw from what is left
            rest = [i for i in range(population) if self._is_alive(i) and i not in chosen]
            chosen.update(dict.fromkeys(rng.sample(rest, wanted - len(chosen))))
        return list(chosen)

    def _leave_slot(self, index: int) -> None:
        if index in self._moved_at:
            self._moved.remove((self._moved_at.pop(index), index))
        elif index < self.spec.size:
            bisect.insort(self._displaced, index)

    def _record(self, mutation: Mutation) -> Mutation:
        self._log.append(mutation)
        self._events.setdefault(mutation.index, []).append(mutation)
        return mutation

    def update(self, index: int, now_ms: int, *, touch: bool = False) -> Mutation | None:
        """Change object *index*: new content, `last_updated` = now, so it moves to the end.

        With `touch`, only `last_updated` moves and the content stays (pitfall P8).
        """
        if not self._is_alive(index):
            return None
        at = self._stamp(now_ms)
        self._leave_slot(index)
        bisect.insort(self._moved, (at, index))
        self._moved_at[index] = at
        if not touch:
            self._revision[index] = self._revision.get(index, 0) + 1
        return self._record(Mutation(at, "touch" if touch else "update", index))

    def delete(self, index: int, now_ms: int) -> Mutation | None:
        """Remove object *index* (tariffs really disappear; the sandbox does it for any module)."""
        if not self._is_alive(index):
            return None
        at = self._stamp(now_ms)
        self._leave_slot(index)
        self._deleted.add(index)
        return self._record(Mutation(at, "delete", index))

    def insert(self, now_ms: int) -> Mutation:
        """Create a new object after the base range, `last_updated` = now."""
        at = self._stamp(now_ms)
        index = self.spec.size + self._inserted
        self._inserted += 1
        bisect.insort(self._moved, (at, index))
        self._moved_at[index] = at
        return self._record(Mutation(at, "insert", index))

    def mutate_randomly(
        self,
        rng: random.Random,
        now_ms: int,
        kinds: tuple[MutationKind, ...] = DEFAULT_MUTATION_KINDS,
    ) -> Mutation | None:
        """One random mutation of one of `kinds`, as a busy partner makes: mostly updates.

        The kind and the object are drawn from `rng` only, so a seeded stream repeats.
        """
        weights = [(kind, weight) for kind, weight in _MUTATION_WEIGHTS if kind in kinds]
        roll = rng.random() * sum(weight for _, weight in weights)
        chosen = weights[-1][0]
        for kind, weight in weights:
            if roll < weight:
                chosen = kind
                break
            roll -= weight
        if chosen == "insert":
            return self.insert(now_ms)
        population = self.spec.size + self._inserted
        if population == 0:
            return None
        index = rng.randrange(population)
        if chosen == "delete":
            return self.delete(index, now_ms)
        return self.update(index, now_ms, touch=chosen == "touch")

    @property
    def mutations(self) -> tuple[Mutation, ...]:
        """Every mutation so far, oldest first."""
        return tuple(self._log)

    # -- ground truth --------------------------------------------------------------------------

    def state_at(self, instant_ms: int) -> Iterator[TruthEntry]:
        """Every object that existed at `instant_ms` with `last_updated < instant_ms`.

        Computed, not stored: base objects are generated from their index and only the logged
        mutations that happened before the instant are replayed.
        """
        total = self.spec.size + self._inserted
        for index in range(total):
            events = self._events.get(index)
            if events is None:
                if index >= self.spec.size:
                    continue
                lu: int | None = self.base_last_updated(index)
            else:
                lu = self.base_last_updated(index) if index < self.spec.size else None
                for event in events:
                    if event.at_ms >= instant_ms:
                        break
                    lu = None if event.kind == "delete" else event.at_ms
            if lu is not None and lu < instant_ms:
                yield TruthEntry(index, lu, self.invalid_kind(index))

    def changed_since(self, instant_ms: int) -> set[int]:
        """Indices of objects updated, deleted or inserted at or after `instant_ms`."""
        start = bisect.bisect_left([m.at_ms for m in self._log], instant_ms)
        return {m.index for m in self._log[start:]}
