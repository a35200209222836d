"""From a fetched page to Kafka records: validate, key, add headers, dead-letter the rest. No I/O.

The value of an object's message is the partner's object re-serialised as compact JSON, unknown
fields included. An object is dead-lettered when it fails its version's model or has no usable
key; the rest of the page goes on. Two objects with the same key in one page are both produced, in
page order (compaction keeps the later), and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from producer.kafka.digests import dead_content_hash
from producer.kafka.records import MAX_MESSAGE_BYTES, Header, OutMessage
from schemas import headers as h
from schemas.dialects import Dialect
from schemas.keys import ObjectKeyError, PartnerIdentity, key_function
from schemas.records import DeadLetter
from schemas.validation import PageValidator, ValidationMode

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
    # aligned with `dead_letters`: a hash of each dead object's identity and content (a dead
    # letter's record differs every time it is made; the object it carries does not)
    dead_contents: list[int] = field(default_factory=list)

    def dialect_counts(self) -> Counter[Dialect]:
        """How many of the objects produced used each dialect."""
        counts: Counter[Dialect] = Counter()
        if self.dialects:
            for position in self.positions:
                counts.update(self.dialects.get(position, ()))
        return counts


class MessageBuilder:
    """Builds the records of every page of one partner module in one pull."""

    def __init__(
        self,
        *,
        partner: str,
        module: str,
        ocpi_version: str,
        pull_id: str,
        partner_identity: PartnerIdentity | None,
        validation: ValidationMode = "lenient",
    ) -> None:
        self._partner = partner
        self._module = module
        self._version = ocpi_version
        self._pull_id = pull_id
        self.identity = partner_identity
        self._validator = PageValidator(ocpi_version, module, validation)
        self._key = key_function(module, ocpi_version, partner_identity)
        self._common: list[Header] = [
            (h.OCPI_VERSION, ocpi_version.encode()),
            (h.OCPI_MODULE, module.encode()),
            (h.PARTNER, partner.encode()),
            (h.PULL_ID, pull_id.encode()),
        ]

    def build(
        self,
        items: Sequence[Any],
        first_offset: int,
        source_url: str,
        traceparent: str | None,
        window: int | None = None,
    ) -> PageMessages:
        """Records for a page's `data` items; `first_offset` is the page's position in the list,
        `window` the pull's date window it belongs to."""
        report = self._validator.check_items(items)
        errors: dict[int, list[str]] = {bad.index: list(bad.errors) for bad in report.invalid}
        readings = report.readings  # our logic reads the canonical form; the value stays as sent
        trace: list[Header] = [] if traceparent is None else [(h.TRACEPARENT, traceparent.encode())]
        if window is not None:
            trace.insert(0, (h.PULL_WINDOW, str(window).encode()))
        common = self._common
        make_key = self._key
        dumps = orjson.dumps
        objects: list[OutMessage] = []
        keys: list[str] = []
        positions: list[int] = []
        dead: list[tuple[int, str | None, list[str]]] = []
        for index, item in enumerate(items):
            try:
                key = make_key(readings.get(index, item))
            except ObjectKeyError as error:
                errors.setdefault(index, []).append(str(error))
                key = None
            if index in errors:
                dead.append((index, key, errors[index]))
                continue
            assert key is not None
            value = dumps(item)
            if len(value) > MAX_OBJECT_BYTES:
                dead.append((index, key, [too_large(len(value))]))
                continue
            keys.append(key)
            positions.append(index)
            offset_header = (h.SOURCE_OFFSET, str(first_offset + index).encode())
            objects.append(OutMessage(key.encode(), value, [*common, offset_header, *trace]))
        dead_letters = [
            self._dead_letter(items[i], key, reasons, first_offset + i, source_url, trace)
            for i, key, reasons in dead
        ]
        identities = [key or dumps(items[i]).decode("utf-8", "replace") for i, key, _ in dead]
        contents = [
            dead_content_hash(identity, dumps(items[i]))
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
            dialects=report.dialects,
            examples=report.examples,
            dead_contents=contents,
        )

    def _dead_letter(
        self,
        item: Any,
        key: str | None,
        reasons: list[str],
        offset: int,
        source_url: str,
        trace: list[Header],
    ) -> OutMessage:
        if len(orjson.dumps(item)) > MAX_OBJECT_BYTES:
            item = None  # the object itself cannot travel; the error says how large it was
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
            [*self._common, (h.SOURCE_OFFSET, str(offset).encode()), *trace],
        )
