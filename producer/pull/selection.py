"""Which of a page's records a window produces. Pure (the key state is read, not written).

Dropped: objects this window already produced unchanged (a step-back or a re-read pass meets them
again), objects whose `last_updated` lies outside the window (a 2.1.1 window starts a second early,
and some partners treat `date_to` as inclusive: the neighbouring window produces those), and with
--skip-unchanged objects whose content is what was produced before (P8).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import datetime
from operator import attrgetter

from producer.kafka.digests import content_digest, key_hash, legacy_content_digest, value_hash
from producer.kafka.keystate import KeyState
from producer.pull.records import PageMessages

_VALUE = attrgetter("value")


class WindowSelection:
    """One window's memory of what it received, and the filter every page passes."""

    def __init__(
        self,
        date_from: datetime | None,
        date_to: datetime,
        *,
        keystate: KeyState | None = None,
        skip_unchanged: bool = False,
        committed: AbstractSet[int] | None = None,
    ) -> None:
        self._from_s = None if date_from is None else date_from.timestamp()
        self._to_s = date_to.timestamp()
        self._keystate = keystate
        self._skip_unchanged = skip_unchanged
        # key hash -> value hash of every object this window received (for the completeness
        # check, and to not produce an unchanged object twice).
        self._seen: dict[int, int] = {}
        # A partner listing one key twice in a page fills two list slots: count the extra ones,
        # per key the most any one page listed it (a page read again must not count them again).
        self._extra_slots: dict[int, int] = {}
        self._skipped_unchanged = 0
        # Exactly-once, resumed: objects this pull committed before (a step-back or a re-read
        # meets them again), as hash((hash(key), hash(value))); they are not produced again.
        self._committed = committed

    @property
    def received(self) -> int:
        """Distinct objects received (valid or not), plus keys a page listed more than once."""
        return len(self._seen) + sum(self._extra_slots.values())

    @property
    def distinct(self) -> int:
        """Distinct objects received (valid or not)."""
        return len(self._seen)

    def take_skipped_unchanged(self) -> int:
        """Objects skipped as unchanged since the last call."""
        skipped, self._skipped_unchanged = self._skipped_unchanged, 0
        return skipped

    def select(self, messages: PageMessages) -> PageMessages:
        """The records of this page that the window produces (dead letters always are)."""
        if messages.duplicate_keys:
            self._count_extra_slots(messages.keys)
        objects, keys, stamps = messages.objects, messages.keys, messages.last_updated
        kept = self._unseen(messages)  # indexes into the page's records
        if not self._all_inside(stamps):
            inside = self._inside
            kept = [index for index in kept if inside(stamps[index])]
        if self._committed:
            kept = self._not_committed(messages, kept)
        for identity in messages.dead_identities:
            # Received, just not valid: it counts toward the window's total all the same.
            self._seen.setdefault(hash(identity), 0)
        digests: list[int] = []
        if self._keystate is not None:
            hashes = [key_hash(k) for k in keys]  # each key hashed once
            # Everything the partner listed exists there, produced or not: never tombstone it.
            self._keystate.mark_seen(hashes + [key_hash(k) for k in messages.dead_keys])
            digests = [content_digest(objects[i].value or b"") for i in kept]
            if self._skip_unchanged:
                kept, digests = self._changed_only(self._keystate, messages, hashes, kept, digests)
        if len(kept) == len(objects):  # all of them (nearly every page): the lists as they are
            return replace(messages, digests=digests)
        return PageMessages(
            [objects[i] for i in kept],
            messages.dead_letters,
            [keys[i] for i in kept],
            [messages.positions[i] for i in kept],
            messages.duplicate_keys,
            messages.dead_identities,
            messages.dead_keys,
            digests,
            messages.dialects,
            messages.examples,
            [messages.last_updated[i] for i in kept],
        )

    def _unseen(self, messages: PageMessages) -> list[int]:
        """The records this window has not produced before with this value (and remember them:
        a step-back or a re-read pass meets them again)."""
        seen = self._seen
        hashes = list(map(hash, messages.keys))
        values = list(map(value_hash, map(_VALUE, messages.objects)))  # (records, no tombstones)
        if not messages.duplicate_keys and seen.keys().isdisjoint(hashes):
            seen.update(
                zip(hashes, values, strict=True)
            )  # a page of keys new to the window: all of them
            return list(range(len(hashes)))
        kept: list[int] = []
        for index, (seen_key, seen_value) in enumerate(zip(hashes, values, strict=True)):
            if seen.get(seen_key) == seen_value:
                continue
            seen[seen_key] = seen_value
            kept.append(index)
        return kept

    def _not_committed(self, messages: PageMessages, kept: list[int]) -> list[int]:
        committed = self._committed
        assert committed is not None
        objects, keys = messages.objects, messages.keys
        return [i for i in kept if hash((hash(keys[i]), hash(objects[i].value))) not in committed]

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
        """P8: drop objects whose content (without last_updated) is what was produced before."""
        previous, legacy = keystate.previous_digests([hashes[i] for i in kept])
        out: tuple[list[int], list[int]] = ([], [])
        for index, digest, before, old in zip(kept, digests, previous, legacy, strict=True):
            value = messages.objects[index].value or b""
            if before == (legacy_content_digest(value) if old else digest):
                self._skipped_unchanged += 1
                continue
            out[0].append(index)
            out[1].append(digest)
        return out

    def _all_inside(self, stamps: list[int | None]) -> bool:
        """Whether every `last_updated` of a page is in the window (one check for most pages)."""
        if not stamps or None in stamps:
            return False
        known: list[int] = stamps  # type: ignore[assignment]  # (no None, just checked)
        low, high = min(known), max(known)
        return (self._from_s is None or low >= self._from_s) and high < self._to_s

    def _inside(self, stamp: int | None) -> bool:
        """Whether a `last_updated` (epoch seconds of the canonical reading) is in the window;
        an object without one readable is kept."""
        if stamp is None:
            return True
        if self._from_s is not None and stamp < self._from_s:
            return False
        return stamp < self._to_s
