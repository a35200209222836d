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
from datetime import datetime
from typing import Any

from producer.kafka.digests import content_digest, key_hash
from producer.kafka.keystate import KeyState
from producer.kafka.records import OutMessage
from producer.ocpi.query import format_ocpi_datetime, parse_last_updated
from producer.pull.records import PageMessages


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
        self._from_text = None if date_from is None else format_ocpi_datetime(date_from)
        self._to_text = format_ocpi_datetime(date_to)
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

    def select(self, items: Sequence[Any], messages: PageMessages) -> PageMessages:
        """The records of this page that the window produces (dead letters always are)."""
        if messages.duplicate_keys:
            self._count_extra_slots(messages.keys)
        kept: list[OutMessage] = []
        kept_keys: list[str] = []
        kept_positions: list[int] = []
        for message, key, position in zip(
            messages.objects, messages.keys, messages.positions, strict=True
        ):
            seen_key, seen_value = hash(key), hash(message.value)
            if self._seen.get(seen_key) == seen_value:
                continue
            self._seen[seen_key] = seen_value
            if not self._inside(items[position]):
                continue
            kept.append(message)
            kept_keys.append(key)
            kept_positions.append(position)
        if self._committed:
            kept, kept_keys, kept_positions = self._not_committed(kept, kept_keys, kept_positions)
        for identity in messages.dead_identities:
            # Received, just not valid: it counts toward the window's total all the same.
            self._seen.setdefault(hash(identity), 0)
        digests: list[int] = []
        if self._keystate is not None:
            # Everything the partner listed exists there, produced or not: never tombstone it.
            self._keystate.mark_seen([key_hash(k) for k in (*messages.keys, *messages.dead_keys)])
            digests = [content_digest(m.value or b"") for m in kept]
            if self._skip_unchanged:
                kept, kept_keys, kept_positions, digests = self._changed_only(
                    self._keystate, kept, kept_keys, kept_positions, digests
                )
        return PageMessages(
            kept,
            messages.dead_letters,
            kept_keys,
            kept_positions,
            messages.duplicate_keys,
            messages.dead_identities,
            messages.dead_keys,
            digests,
            messages.dialects,
            messages.examples,
        )

    def _not_committed(
        self, kept: list[OutMessage], keys: list[str], positions: list[int]
    ) -> tuple[list[OutMessage], list[str], list[int]]:
        committed = self._committed
        assert committed is not None
        out: tuple[list[OutMessage], list[str], list[int]] = ([], [], [])
        for message, key, position in zip(kept, keys, positions, strict=True):
            if hash((hash(key), hash(message.value))) in committed:
                continue
            out[0].append(message)
            out[1].append(key)
            out[2].append(position)
        return out

    def _count_extra_slots(self, keys: Sequence[str]) -> None:
        for key, listed in Counter(keys).items():
            if listed > 1:
                hashed = hash(key)
                self._extra_slots[hashed] = max(self._extra_slots.get(hashed, 0), listed - 1)

    def _changed_only(
        self,
        keystate: KeyState,
        kept: list[OutMessage],
        keys: list[str],
        positions: list[int],
        digests: list[int],
    ) -> tuple[list[OutMessage], list[str], list[int], list[int]]:
        """P8: drop objects whose content (without last_updated) is what was produced before."""
        previous = keystate.previous_digests([key_hash(k) for k in keys])
        out: tuple[list[OutMessage], list[str], list[int], list[int]] = ([], [], [], [])
        for message, key, position, digest, before in zip(
            kept, keys, positions, digests, previous, strict=True
        ):
            if digest == before:
                self._skipped_unchanged += 1
                continue
            out[0].append(message)
            out[1].append(key)
            out[2].append(position)
            out[3].append(digest)
        return out

    def _inside(self, item: Any) -> bool:
        value = item.get("last_updated") if isinstance(item, dict) else None
        if type(value) is str and len(value) == 20 and value[10] == "T" and value[19] == "Z":
            # The canonical form sorts as text exactly as it does as time.
            return (self._from_text is None or value >= self._from_text) and value < self._to_text
        stamp = parse_last_updated(item)
        if stamp is None:
            return True
        if self._from_s is not None and stamp < self._from_s:
            return False
        return stamp < self._to_s
