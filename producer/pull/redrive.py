"""Redrive: a pull's dead letters judged again by the current models, and the records of those
that now pass. No I/O (`ocpi-puller redrive` reads and produces).

Each dead letter's object is read by the same page reader as a pull's pages (`MessageBuilder`),
at the offset and with the source URL it came from: a key it now has, the headers a pull would
give it, plus `redrive-id`. A pull resumed over a page dead-letters its objects again: only the
latest letter per key (or per offset, for those without one) is judged. A letter whose object
could not travel (too large) or that cannot be read is unusable: it stays where it is.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from pydantic import ValidationError

from producer.kafka.records import OutMessage
from producer.ocpi.paging.reader import PageReader
from producer.pull.records import MessageBuilder
from schemas import headers as h
from schemas.keys import PartnerIdentity
from schemas.records import DeadLetter
from schemas.validation import ValidationMode

SAMPLE = 5  # still-invalid letters shown


def new_redrive_id() -> str:
    """A sortable, unique id for one redrive (the `redrive-id` header)."""
    return f"redrive-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class Redriven:
    """A dead letter's object that now passes: its record, and when it had failed (epoch ms)."""

    module: str
    message: OutMessage
    failed_at_ms: int


@dataclass(slots=True)
class Verdicts:
    """What the dead letters are now."""

    read: int = 0  # dead-letter records of the pull
    latest: int = 0  # distinct letters (the latest per key or offset)
    passing: list[Redriven] = field(default_factory=list)
    still_invalid: list[tuple[str, list[str]]] = field(default_factory=list)  # identity, errors
    unusable: int = 0  # unreadable, or the object did not travel (too large)

    def sample(self) -> list[str]:
        """A few still-invalid letters, each with its first error."""
        return [f"{who}: {errors[0] if errors else '?'}" for who, errors in self.still_invalid][
            :SAMPLE
        ]


def _latest(records: Iterable[Any]) -> list[tuple[DeadLetter | None, dict[str, bytes]]]:
    """The latest letter per (partner, module, message key), in topic order of their last copy."""
    chosen: dict[tuple[bytes, bytes, bytes], tuple[DeadLetter | None, dict[str, bytes]]] = {}
    for record in records:
        headers = dict(record.headers or ())
        try:
            letter: DeadLetter | None = DeadLetter.model_validate_json(record.value or b"")
        except ValidationError:
            letter = None
        where = (headers.get(h.PARTNER, b""), headers.get(h.OCPI_MODULE, b""), record.key or b"")
        chosen.pop(where, None)
        chosen[where] = (letter, headers)
    return list(chosen.values())


def judge(
    records: Iterable[Any],
    *,
    pull_id: str,
    redrive_id: str,
    validation: ValidationMode,
    identity: PartnerIdentity | None,
) -> Verdicts:
    """Judge every dead letter of `pull_id` (ConsumerRecords of `<prefix>.deadletter`) again."""
    records = list(records)
    verdicts = Verdicts(read=len(records))
    builders: dict[tuple[str, str, str], tuple[PageReader, MessageBuilder]] = {}
    letters = _latest(records)
    verdicts.latest = len(letters)
    for letter, headers in letters:
        if letter is None or letter.object is None:
            verdicts.unusable += 1
            continue
        scope = (letter.partner, letter.module, letter.ocpi_version)
        pair = builders.get(scope)
        if pair is None:
            pair = builders[scope] = (
                PageReader(letter.ocpi_version, letter.module, identity, validation),
                MessageBuilder(
                    partner=letter.partner, module=letter.module,
                    ocpi_version=letter.ocpi_version, pull_id=pull_id,
                ),
            )  # fmt: skip
        reader, builder = pair
        trace = headers.get(h.TRACEPARENT)
        built = builder.build(
            reader.read([orjson.dumps(letter.object)]),
            letter.source_offset,
            letter.source_url,
            None if trace is None else trace.decode(),
        )
        if built.objects:
            (built_message,) = built.objects
            # (Its headers are shared with the builder's other records: a new list.)
            message = msgspec.structs.replace(
                built_message,
                headers=[*built_message.headers, (h.REDRIVE_ID, redrive_id.encode())],
            )
            failed_at_ms = int(letter.failed_at.timestamp() * 1000)
            verdicts.passing.append(Redriven(letter.module, message, failed_at_ms))
        else:
            (dead,) = built.dead_letters
            errors = orjson.loads(dead.value or b"{}").get("errors", [])
            who = letter.key or f"{letter.partner}/{letter.module} offset {letter.source_offset}"
            verdicts.still_invalid.append((who, [str(e) for e in errors]))
    return verdicts


def needs_identity(records: Iterable[Any]) -> bool:
    """Whether any letter is of OCPI 2.1.1 (whose keys take the partner's identity)."""
    return any(
        dict(record.headers or ()).get(h.OCPI_VERSION, b"").startswith(b"2.1") for record in records
    )
