"""Which of a page's records a window produces, and when an object counts as seen. Pure (the key
state is read, not written).

Two memories, kept apart on purpose:
* what the partner *listed* (every object of every page fetched, valid or not, in the window's
  date range or not): the window's count of received objects, checked against its total;
* what is *durable*: objects whose page Kafka acknowledged (at-least-once) or whose page went into
  a commit unit (exactly-once, where units commit in order, all or nothing). Only a durable,
  identical copy lets a window skip an object it meets again (a step-back, a page fetched ahead,
  a second pass): an object is seen when the page that carries it is in Kafka, never when it was
  fetched, so a checkpoint can never pass an object whose only copy is still on its way.

Objects listed outside the range the window asked for are produced like any other (the key
decides; compaction absorbs a copy the neighbouring window also produces) and counted apart.
Only an OCPI 2.1.1 window asks from a second before its own start (2.1.1 leaves date_from's
inclusiveness open): objects of that second are the neighbouring window's to produce. With
--skip-unchanged, objects whose content is what was produced before are dropped.

Keys and values are remembered by hash (`key_hash`, `value_hash`: stable across processes, so a
resumed pull compares what it reads back from Kafka the same way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from operator import attrgetter

from producer.kafka.digests import content_digest, key_hash, legacy_content_digest, value_hash
from producer.kafka.inventory import WrittenBefore
from producer.kafka.keystate import KeyState
from producer.pull.records import PageMessages

_VALUE = attrgetter("value")


class WindowSelection:
    """One window's memory of what it was listed and what is durable, and the filter every page
    passes."""

    def __init__(
        self,
        date_from: datetime | None,
        date_to: datetime,
        *,
        keystate: KeyState | None = None,
        skip_unchanged: bool = False,
        written_before: WrittenBefore | None = None,
        asked_from: datetime | None = None,
    ) -> None:
        self._own_from_s = None if date_from is None else int(date_from.timestamp())
        asked = date_from if asked_from is None else asked_from
        self._from_s = None if asked is None else int(asked.timestamp())
        self._to_s = int(date_to.timestamp())
        self._keystate = keystate
        self._skip_unchanged = skip_unchanged
        # Hashes of every key (or, keyless, identity) the partner listed in this window.
        self._listed: set[int] = set()
        # A partner listing one key twice in a page fills two list slots: count the extra ones,
        # per key the most any one page listed it (a page read again must not count them again).
        self._extra_slots: dict[int, int] = {}
        # Key hashes listed with a last_updated outside the range the window asked for; and of
        # those, the ones no reading of the filter's bounds allows (before date_from, or after
        # date_to: one at date_to itself is a partner taking date_to as inclusive).
        self._outside: set[int] = set()
        self._contradicting: set[int] = set()
        # How many seconds before the asked date_from the earliest object listed lies.
        self._early_by_s = 0
        # Keys listed in the second a 2.1.1 window asks before its own start.
        self._neighbours: set[int] = set()
        # The oldest and newest last_updated listed (epoch seconds).
        self._oldest: int | None = None
        self._newest: int | None = None
        # key hash -> value hash of every object of this window that is durable in Kafka, and
        # the content hashes of its durable dead letters.
        self._durable: dict[int, int] = {}
        self._durable_dead: set[int] = set()
        # Resumed: what this pull wrote before (a step-back or a re-read meets it again):
        # durable as well.
        self._committed = None if written_before is None else written_before.objects
        if written_before is not None:
            self._durable_dead.update(written_before.dead_letters)
        self._skipped_unchanged = 0

    @property
    def received(self) -> int:
        """Distinct objects listed (valid or not), plus keys a page listed more than once."""
        return len(self._listed) + sum(self._extra_slots.values())

    @property
    def distinct(self) -> int:
        """Distinct objects listed (valid or not)."""
        return len(self._listed)

    @property
    def out_of_window(self) -> int:
        """Distinct objects listed whose last_updated lies outside the window's range."""
        return len(self._outside)

    @property
    def filter_contradicted(self) -> int:
        """Distinct objects listed whose last_updated the window's date filter excludes however
        its bounds are read: the partner's filter is off, and may leave out others."""
        return len(self._contradicting)

    @property
    def early_by_s(self) -> int:
        """How far before the window's asked date_from an object was listed (seconds; 0: none)."""
        return self._early_by_s

    @property
    def duplicate_keys(self) -> int:
        """List slots filled by a key the same page listed before (each counted once)."""
        return sum(self._extra_slots.values())

    def take_skipped_unchanged(self) -> int:
        """Objects skipped as unchanged since the last call."""
        skipped, self._skipped_unchanged = self._skipped_unchanged, 0
        return skipped

    def seen_span(self) -> tuple[int, int] | None:
        """The oldest and newest last_updated (epoch seconds) of what was listed, if any."""
        if self._oldest is None or self._newest is None:
            return None
        return self._oldest, self._newest

    def listed(self, messages: PageMessages, tally: set[int] | None = None) -> None:
        """A page as the partner listed it (when it is fetched): what the window received (and
        `tally`, the hashes of a part of the window being counted apart, received too)."""
        if messages.duplicate_keys:
            self._count_extra_slots(messages.keys)
        hashes = messages.hashes
        self._listed.update(hashes)
        if tally is not None:
            tally.update(hashes)
        stamps = [s for s in messages.last_updated if s is not None]
        if stamps:
            low, high = min(stamps), max(stamps)
            self._oldest = low if self._oldest is None else min(self._oldest, low)
            self._newest = high if self._newest is None else max(self._newest, high)
            if not self._all_inside(low, high):
                self._place(hashes, messages.last_updated)
        for identity in messages.dead_identities:
            self._listed.add(hash(identity))  # received, just not valid: it counts all the same
            if tally is not None:
                tally.add(hash(identity))
        if self._keystate is not None:
            # Everything the partner listed exists there, produced or not: never tombstone it.
            self._keystate.mark_seen([key_hash(k) for k in (*messages.keys, *messages.dead_keys)])

    def select(self, messages: PageMessages) -> PageMessages:
        """The records of a page to produce: every object and dead letter but those with an
        identical copy already durable. (`dead_identities` and `dead_keys` stay as listed.)"""
        objects, keys = messages.objects, messages.keys
        kept = self._not_durable(messages)  # indexes into the page's records
        dead_letters, dead_contents = messages.dead_letters, messages.dead_contents
        if self._durable_dead and dead_contents:
            fresh = [i for i, c in enumerate(dead_contents) if c not in self._durable_dead]
            dead_letters = [dead_letters[i] for i in fresh]
            dead_contents = [dead_contents[i] for i in fresh]
        digests: list[int] = []
        if self._keystate is not None:
            digests = [content_digest(objects[i].value or b"") for i in kept]
            if self._skip_unchanged:
                hashes = [key_hash(keys[i]) for i in kept]
                kept, digests = self._changed_only(self._keystate, messages, hashes, kept, digests)
        if len(kept) == len(objects) and len(dead_letters) == len(messages.dead_letters):
            return replace(messages, digests=digests)  # all of them (nearly every page)
        return replace(
            messages,
            objects=[objects[i] for i in kept],
            dead_letters=dead_letters,
            keys=[keys[i] for i in kept],
            hashes=[messages.hashes[i] for i in kept],
            positions=[messages.positions[i] for i in kept],
            digests=digests,
            last_updated=[messages.last_updated[i] for i in kept],
            dead_contents=dead_contents,
        )

    def made_durable(self, messages: PageMessages) -> int:
        """These records are in Kafka (acknowledged, or in a commit unit): seen from now on.
        How many of their keys this window had not written before."""
        durable, committed = self._durable, self._committed
        values = map(value_hash, map(_VALUE, messages.objects))
        self._durable_dead.update(messages.dead_contents)
        if committed is None:
            # (Nearly every page: a pull not resumed. The keys new to the window are what the
            # update adds; a key the page lists twice is added once.)
            before = len(durable)
            durable.update(zip(messages.hashes, values, strict=True))
            return len(durable) - before
        new = 0
        for key, hashed, value in zip(messages.keys, messages.hashes, values, strict=True):
            if hashed not in durable and key_hash(key) not in committed:
                new += 1
            durable[hashed] = value
        return new

    def _not_durable(self, messages: PageMessages) -> list[int]:
        """Indexes of the records without an identical durable copy (nor one earlier in the
        page: an identical repeat within the page travels with its first copy), and not the
        2.1.1 neighbour's."""
        durable, committed, neighbours = self._durable, self._committed, self._neighbours
        hashes = messages.hashes
        fresh = not neighbours and not committed and not messages.duplicate_keys
        if fresh and durable.keys().isdisjoint(hashes):
            return list(range(len(hashes)))  # a page of keys new to the window
        values = list(map(value_hash, map(_VALUE, messages.objects)))
        kept: list[int] = []
        in_page: dict[int, int] = {}
        for index, (hashed, value) in enumerate(zip(hashes, values, strict=True)):
            if hashed in neighbours or in_page.get(hashed) == value:
                continue
            in_page[hashed] = value
            if durable.get(hashed) == value:
                continue
            if committed and committed.get(key_hash(messages.keys[index])) == value:
                continue
            kept.append(index)
        return kept

    def _count_extra_slots(self, keys: Sequence[str]) -> None:
        for key, listed in Counter(keys).items():
            if listed > 1:
                hashed = hash(key)
                self._extra_slots[hashed] = max(self._extra_slots.get(hashed, 0), listed - 1)

    def _changed_only(
        self,
        keystate: KeyState,
        messages: PageMessages,
        hashes: list[int],
        kept: list[int],
        digests: list[int],
    ) -> tuple[list[int], list[int]]:
        """Drop objects whose content (without last_updated) is what was produced before (a
        digest written by an earlier version is compared with its own function)."""
        previous, legacy = keystate.previous_digests(hashes)
        out: tuple[list[int], list[int]] = ([], [])
        for index, digest, before, old in zip(kept, digests, previous, legacy, strict=True):
            value = messages.objects[index].value or b""
            if before == (legacy_content_digest(value) if old else digest):
                self._skipped_unchanged += 1
                continue
            out[0].append(index)
            out[1].append(digest)
        return out

    def _all_inside(self, low: int, high: int) -> bool:
        """Whether a page's last_updated span lies in the window's own range (most pages)."""
        start = self._own_from_s
        return (start is None or low >= start) and high < self._to_s

    def _place(self, hashes: list[int], stamps: list[int | None]) -> None:
        """Objects of a page that straddles the window's bounds: those outside the range asked
        for are counted apart, those of a 2.1.1 window's lead second are the neighbour's."""
        for hashed, stamp in zip(hashes, stamps, strict=True):
            if stamp is None:
                continue
            if (self._from_s is not None and stamp < self._from_s) or stamp >= self._to_s:
                self._outside.add(hashed)
                if stamp != self._to_s:
                    self._contradicting.add(hashed)
                if self._from_s is not None and stamp < self._from_s:
                    self._early_by_s = max(self._early_by_s, self._from_s - stamp)
            elif self._own_from_s is not None and stamp < self._own_from_s:
                self._neighbours.add(hashed)
