"""From a read page to Kafka records: keys, values, headers, dead letters. No I/O.

The page reader (`ocpi.paging.reader`) has read every object: its value (the partner's object
as sent, compact JSON, unknown fields included), its key and its verdict. Valid objects become
records keyed by their key; dead letters (invalid, keyless, or too large for one record) go to the
dead-letter topic and the rest of the page goes on. Two objects with the same key in one page
are both produced, in page order (compaction keeps the later), and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat

import orjson

from producer.kafka.digests import dead_content_hash
from producer.kafka.records import MAX_MESSAGE_BYTES, Header, OutMessage, records_size
from producer.ocpi.paging.reader import ReadPage
from schemas import headers as h
from schemas.dialects import Dialect
from schemas.records import DeadLetter

# An object's value must leave room in its record for the key and headers.
MAX_OBJECT_BYTES = MAX_MESSAGE_BYTES - 16_384


def too_large(size: int) -> str:
    """The dead-letter reason of an object too large for one Kafka record."""
    return f"object of {size} bytes exceeds the {MAX_OBJECT_BYTES} bytes one Kafka record may hold"


@dataclass(frozen=True, slots=True)
class PageMessages:
    """The records one page produces."""

    objects: list[OutMessage]
    dead_letters: list[OutMessage]
    keys: list[str]  # aligned with `objects`
    positions: list[int]  # aligned with `objects`: index of the object in the page
    duplicate_keys: int
    dead_identities: list[str] = field(default_factory=list)  # key, else the raw JSON
    dead_keys: list[str] = field(default_factory=list)  # dead letters that had a key
    digests: list[int] = field(default_factory=list)  # aligned with `objects` (--skip-unchanged)
    # page position -> the dialects its object was written in (lenient validation), and the
    # first example of each dialect on the page
    dialects: dict[int, frozenset[Dialect]] = field(default_factory=dict)
    examples: dict[Dialect, str] = field(default_factory=dict)
    # aligned with `objects`: last_updated of the canonical reading, epoch seconds (or None)
    last_updated: list[int | None] = field(default_factory=list)
    # aligned with `dead_letters`: a hash of each dead object's identity and content (a dead
    # letter's record differs every time it is made; the object it carries does not)
    dead_contents: list[int] = field(default_factory=list)
    # aligned with `keys`: hash() of each, taken once (the window's sets and its order watch
    # then hold these same int objects, not one copy each)
    hashes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.hashes) != len(self.keys):
            object.__setattr__(self, "hashes", list(map(hash, self.keys)))

    def size(self) -> int:
        """The bytes of its records' keys and values."""
        return records_size(self.objects) + records_size(self.dead_letters)

    def dialect_counts(self) -> Counter[Dialect]:
        """How many of the objects produced used each dialect."""
        counts: Counter[Dialect] = Counter()
        if self.dialects:
            for position in self.positions:
                counts.update(self.dialects.get(position, ()))
        return counts


class MessageBuilder:
    """Builds the records of every page of one partner module in one pull."""

    def __init__(self, *, partner: str, module: str, ocpi_version: str, pull_id: str) -> None:
        self._partner = partner
        self._module = module
        self._version = ocpi_version
        self._pull_id = pull_id
        self._common: list[Header] = [
            (h.OCPI_VERSION, ocpi_version.encode()),
            (h.OCPI_MODULE, module.encode()),
            (h.PARTNER, partner.encode()),
            (h.PULL_ID, pull_id.encode()),
        ]

    def build(
        self,
        page: ReadPage,
        first_offset: int,
        source_url: str,
        traceparent: str | None,
        window: int | None = None,
    ) -> PageMessages:
        """Records for a read page; `first_offset` is the page's position in the list, `window`
        the pull's date window it belongs to."""
        # The headers every record of the page carries (one list, shared); each record's
        # `source-offset` is made when it is appended to a batch (`OutMessage.record_headers`).
        shared = self._common.copy()
        if window is not None:
            shared.append((h.PULL_WINDOW, b"%d" % window))
        if traceparent is not None:
            shared.append((h.TRACEPARENT, traceparent.encode()))
        errors = page.errors
        if not errors and max(map(len, page.values), default=0) <= MAX_OBJECT_BYTES:
            return self._all_valid(page, first_offset, shared)
        objects: list[OutMessage] = []
        keys: list[str] = []
        positions: list[int] = []
        stamps: list[int | None] = []
        dead: list[tuple[int, str | None, list[str]]] = []
        for position, (key, value, stamp) in enumerate(
            zip(page.keys, page.values, page.last_updated, strict=True)
        ):
            if position in errors:
                dead.append((position, key, list(errors[position])))
                continue
            assert key is not None  # a keyless object is a dead letter
            if len(value) > MAX_OBJECT_BYTES:
                dead.append((position, key, [too_large(len(value))]))
                continue
            keys.append(key)
            positions.append(position)
            stamps.append(stamp)
            number = first_offset + position
            objects.append(OutMessage(key.encode(), value, shared, None, h.SOURCE_OFFSET, number))
        dead_letters = [
            self._dead_letter(page, i, key, reasons, first_offset + i, source_url, shared)
            for i, key, reasons in dead
        ]
        identities = [key or page.values[i].decode("utf-8", "replace") for i, key, _ in dead]
        contents = [
            dead_content_hash(identity, orjson.dumps(page.parsed(i)))
            for identity, (i, _, _) in zip(identities, dead, strict=True)
        ]
        return PageMessages(
            objects,
            dead_letters,
            keys,
            positions,
            len(keys) - len(set(keys)),
            identities,
            [key for _, key, _ in dead if key is not None],
            dialects=page.dialects,
            examples=page.examples,
            last_updated=stamps,
            dead_contents=contents,
        )

    def _all_valid(self, page: ReadPage, first_offset: int, shared: list[Header]) -> PageMessages:
        """The records of a page whose every object is produced (nearly every page)."""
        keys: list[str] = page.keys  # type: ignore[assignment]  # no dead letter: all keyed
        offsets = range(first_offset, first_offset + len(keys))
        # (Built in C, no Python loop; the repeats are endless, the keys end the map.)
        objects = list(
            map(
                OutMessage,
                map(str.encode, keys),
                page.values,
                repeat(shared),
                repeat(None),
                repeat(h.SOURCE_OFFSET),
                offsets,
            )
        )
        return PageMessages(
            objects,
            [],
            keys,
            list(range(len(keys))),
            len(keys) - len(set(keys)),
            dialects=page.dialects,
            examples=page.examples,
            last_updated=page.last_updated,
        )

    def _dead_letter(
        self,
        page: ReadPage,
        position: int,
        key: str | None,
        reasons: list[str],
        offset: int,
        source_url: str,
        shared: list[Header],
    ) -> OutMessage:
        # An object too large for a record cannot travel in one either; the error says its size.
        item = None if len(page.values[position]) > MAX_OBJECT_BYTES else page.parsed(position)
        record = DeadLetter(
            pull_id=self._pull_id,
            partner=self._partner,
            module=self._module,
            ocpi_version=self._version,
            key=key,
            source_url=source_url,
            source_offset=offset,
            errors=reasons,
            object=item,
            failed_at=datetime.now(UTC),
        )
        message_key = key or f"{self._partner}/{self._module}/invalid/{self._pull_id}/{offset}"
        return OutMessage(
            message_key.encode(),
            record.model_dump_json().encode(),
            shared,
            None,
            h.SOURCE_OFFSET,
            offset,
        )
