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
--skip-unchanged, objects whose content is what was produced before are dropped (P8).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from producer.kafka.digests import content_digest, key_hash
from producer.kafka.inventory import WrittenBefore
from producer.kafka.keystate import KeyState
from producer.kafka.records import OutMessage
from producer.ocpi.query import format_ocpi_datetime, parse_last_updated
from producer.pull.records import PageMessages
from schemas.datetimes import epoch_seconds


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
        self._own_from_s = None if date_from is None else date_from.timestamp()
        asked = date_from if asked_from is None else asked_from
        self._from_s = None if asked is None else asked.timestamp()
        self._to_s = date_to.timestamp()
        self._from_text = None if asked is None else format_ocpi_datetime(asked)
        self._to_text = format_ocpi_datetime(date_to)
        # Keys listed in the second a 2.1.1 window asks before its own start.
        self._neighbours: set[int] = set()
        # The oldest and newest last_updated listed, as canonical text (which sorts as time).
        self._oldest: str | None = None
        self._newest: str | None = None
        self._keystate = keystate
        self._skip_unchanged = skip_unchanged
        # Hashes of every key (or, keyless, identity) the partner listed in this window.
        self._listed: set[int] = set()
        # A partner listing one key twice in a page fills two list slots: count the extra ones,
        # per key the most any one page listed it (a page read again must not count them again).
        self._extra_slots: dict[int, int] = {}
        # Key hashes listed with a last_updated outside the window's range.
        self._outside: set[int] = set()
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
    def duplicate_keys(self) -> int:
        """List slots filled by a key the same page listed before (each counted once)."""
        return sum(self._extra_slots.values())

    def take_skipped_unchanged(self) -> int:
        """Objects skipped as unchanged since the last call."""
        skipped, self._skipped_unchanged = self._skipped_unchanged, 0
        return skipped

    def listed(
        self, items: Sequence[Any], messages: PageMessages, tally: set[int] | None = None
    ) -> None:
        """A page as the partner listed it (when it is fetched): what the window received (and
        `tally`, the hashes of a part of the window being counted apart, received too)."""
        if messages.duplicate_keys:
            self._count_extra_slots(messages.keys)
        listed = self._listed
        for key, position in zip(messages.keys, messages.positions, strict=True):
            hashed = hash(key)
            listed.add(hashed)
            if tally is not None:
                tally.add(hashed)
            item = items[position]
            self._span(item)
            stamp = self._asked_stamp(item)
            if stamp is False:
                self._outside.add(hashed)
            elif stamp is not True and self._own_from_s is not None and stamp < self._own_from_s:
                self._neighbours.add(hashed)
        for identity in messages.dead_identities:
            listed.add(hash(identity))  # received, just not valid: it counts all the same
            if tally is not None:
                tally.add(hash(identity))
        if self._keystate is not None:
            # Everything the partner listed exists there, produced or not: never tombstone it.
            self._keystate.mark_seen([key_hash(k) for k in (*messages.keys, *messages.dead_keys)])

    def select(self, messages: PageMessages) -> PageMessages:
        """The records of a page to produce: every object and dead letter but those with an
        identical copy already durable. (`dead_identities` and `dead_keys` stay as listed.)"""
        kept: list[OutMessage] = []
        kept_keys: list[str] = []
        kept_positions: list[int] = []
        durable, committed, neighbours = self._durable, self._committed, self._neighbours
        # An identical repeat within the page travels with its first copy.
        in_page: dict[int, int] = {}
        for message, key, position in zip(
            messages.objects, messages.keys, messages.positions, strict=True
        ):
            hashed, value = hash(key), hash(message.value)
            if hashed in neighbours or in_page.get(hashed) == value:
                continue
            in_page[hashed] = value
            if durable.get(hashed) == value or (
                committed is not None and committed.get(hashed) == value
            ):
                continue
            kept.append(message)
            kept_keys.append(key)
            kept_positions.append(position)
        dead_letters, dead_contents = messages.dead_letters, messages.dead_contents
        if self._durable_dead and dead_contents:
            fresh = [i for i, c in enumerate(dead_contents) if c not in self._durable_dead]
            dead_letters = [dead_letters[i] for i in fresh]
            dead_contents = [dead_contents[i] for i in fresh]
        digests: list[int] = []
        if self._keystate is not None:
            digests = [content_digest(m.value or b"") for m in kept]
            if self._skip_unchanged:
                kept, kept_keys, kept_positions, digests = self._changed_only(
                    self._keystate, kept, kept_keys, kept_positions, digests
                )
        return PageMessages(
            kept,
            dead_letters,
            kept_keys,
            kept_positions,
            messages.duplicate_keys,
            messages.dead_identities,
            messages.dead_keys,
            digests,
            messages.dialects,
            messages.examples,
            dead_contents,
        )

    def made_durable(self, messages: PageMessages) -> int:
        """These records are in Kafka (acknowledged, or in a commit unit): seen from now on.
        How many of their keys this window had not written before."""
        durable, committed = self._durable, self._committed
        new = 0
        for message, key in zip(messages.objects, messages.keys, strict=True):
            hashed = hash(key)
            if hashed not in durable and (committed is None or hashed not in committed):
                new += 1
            durable[hashed] = hash(message.value)
        self._durable_dead.update(messages.dead_contents)
        return new

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

    def seen_span(self) -> tuple[int, int] | None:
        """The oldest and newest last_updated (epoch seconds) of what was listed, if any."""
        if self._oldest is None or self._newest is None:
            return None
        oldest, newest = epoch_seconds(self._oldest), epoch_seconds(self._newest)
        return None if oldest is None or newest is None else (oldest, newest)

    def _span(self, item: Any) -> None:
        value = item.get("last_updated") if isinstance(item, dict) else None
        if type(value) is str and len(value) == 20 and value[10] == "T" and value[19] == "Z":
            key = value
        else:
            stamp = parse_last_updated(item)
            if stamp is None:
                return
            key = format_ocpi_datetime(datetime.fromtimestamp(stamp, UTC))
        if self._oldest is None or key < self._oldest:
            self._oldest = key
        if self._newest is None or key > self._newest:
            self._newest = key

    def _asked_stamp(self, item: Any) -> int | bool:
        """False when an object's last_updated lies outside the range the window asked for;
        else its epoch seconds where that may lie before the window's own start (2.1.1), else
        True."""
        value = item.get("last_updated") if isinstance(item, dict) else None
        lead = self._own_from_s is not None and self._own_from_s != self._from_s
        if (
            not lead
            and type(value) is str
            and len(value) == 20
            and value[10] == "T"
            and value[19] == "Z"
        ):
            # The canonical form sorts as text exactly as it does as time.
            return (self._from_text is None or value >= self._from_text) and value < self._to_text
        stamp = parse_last_updated(item)
        if stamp is None:
            return True
        if (self._from_s is not None and stamp < self._from_s) or stamp >= self._to_s:
            return False
        return stamp if lead else True
