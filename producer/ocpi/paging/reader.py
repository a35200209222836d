"""The page reader: every object of a list page, read once into what each reader of pages needs.

Pure. Every reader of a partner's pages (the window pull, the tombstone catch-up, `verify`'s
listing, `PullClient`, `plan`) reads objects through `PageReader.read`, so an object has one key,
one `last_updated` and one verdict whoever reads it. Per object (by its position in the page):

* the value: its JSON text as the partner sent it (compact; `envelope.parse_list_envelope`);
* the verdict: valid, valid in a dialect (lenient validation read it; `dialects`), or a dead
  letter with its errors (`"path: message"`);
* the key, always from the canonical reading (`schemas.keys`), None when none can be built;
* `last_updated` of the canonical reading, as epoch seconds (None when unreadable).

Validation runs in two steps. The fast path (`schemas.fastpath`, msgspec types translated from
the pydantic models) decodes the page in C and accepts the objects the models accept with no
error at all; only the objects it does not accept are parsed and judged by the models
(`schemas.validation.PageValidator`, strict or lenient), which give the verdict, the dialects
and the readings. The models stay the judges; the fast path only spares them the plain objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from producer.errors import PartnerProtocolError
from schemas.datetimes import epoch_seconds
from schemas.dialects import Dialect
from schemas.fastpath import fast_path
from schemas.keys import ObjectKeyError, PartnerIdentity, key_function, page_key_function
from schemas.validation import PageValidator, ValidationMode


class Verdict(StrEnum):
    """What validation made of one object."""

    VALID = "valid"
    DIALECT = "dialect"  # valid as lenient validation read it (see `ReadPage.dialects`)
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class ReadPage:
    """One page's objects as the page reader read them; lists are by position in the page."""

    values: list[bytes]  # each object's JSON text as sent (compact)
    keys: list[str | None]  # from the canonical reading; None: no key can be built
    last_updated: list[int | None]  # of the canonical reading, epoch seconds; None: unreadable
    errors: dict[int, tuple[str, ...]] = field(default_factory=dict)  # the dead letters
    # The objects read in a dialect, which ones; and each dialect's first example on the page.
    dialects: dict[int, frozenset[Dialect]] = field(default_factory=dict)
    examples: dict[Dialect, str] = field(default_factory=dict)
    # Objects whose values lenient validation reads differently from their text: the reading.
    readings: dict[int, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    def verdict(self, position: int) -> Verdict:
        """The verdict on the object at `position`."""
        if position in self.errors:
            return Verdict.DEAD_LETTER
        return Verdict.DIALECT if position in self.dialects else Verdict.VALID

    def parsed(self, position: int) -> Any:
        """The object at `position` as sent, parsed."""
        return orjson.loads(self.values[position])

    def reading(self, position: int) -> Any:
        """The object at `position` as our own logic reads it (canonical values)."""
        if position in self.readings:
            return self.readings[position]
        return self.parsed(position)


class PageReader:
    """Reads the pages of one partner module in one OCPI version (build once, reuse per page).

    `identity` is the partner's, the owner of 2.1.1 objects (their keys need it); `mode` is
    `--validation`.
    """

    def __init__(
        self,
        ocpi_version: str,
        module: str,
        identity: PartnerIdentity | None,
        mode: ValidationMode = "lenient",
    ) -> None:
        self.ocpi_version = ocpi_version
        self.module = module
        self.identity = identity
        self.mode = mode
        self._fast = fast_path(ocpi_version, module)
        self._validator = PageValidator(ocpi_version, module, mode)
        self._keys_of_page = page_key_function(module, ocpi_version, identity, attributes=True)
        self._key_of_decoded: Callable[[Any], str] = key_function(
            module, ocpi_version, identity, attributes=True
        )
        self._key_of_reading: Callable[[Any], str] = key_function(module, ocpi_version, identity)

    def read(self, values: Sequence[bytes], text: bytes = b"") -> ReadPage:
        """Read a page: `values` are its objects' JSON texts (`Envelope.items` of a list page);
        `text`, if given, the page's whole JSON text they were sliced from (`Envelope.text`),
        which is then decoded in one go."""
        fast = self._fast.read(values, text)
        values = list(values)
        last_updated = list(fast.last_updated)
        errors: dict[int, tuple[str, ...]] = {}
        keys = self._keys(fast.accepted, fast.everything, errors)
        if fast.everything:
            return ReadPage(values, keys, last_updated, errors)
        rejected = [i for i, decoded in enumerate(fast.accepted) if decoded is None]
        if not rejected:
            return ReadPage(values, keys, last_updated, errors)
        return self._judge(values, rejected, keys, last_updated, errors)

    def _keys(
        self, accepted: list[Any], everything: bool, errors: dict[int, tuple[str, ...]]
    ) -> list[str | None]:
        """Keys of the objects the fast path accepted (None for the rest, and for keyless ones,
        which become dead letters)."""
        if everything:
            found = self._keys_of_page(accepted)
            if found is not None:
                return list(found)
        key_of = self._key_of_decoded
        keys: list[str | None] = []
        for position, decoded in enumerate(accepted):
            if decoded is None:
                keys.append(None)
                continue
            try:
                keys.append(key_of(decoded))
            except ObjectKeyError as error:
                keys.append(None)
                errors[position] = (str(error),)
        return keys

    def _judge(
        self,
        values: list[bytes],
        rejected: list[int],
        keys: list[str | None],
        last_updated: list[int | None],
        errors: dict[int, tuple[str, ...]],
    ) -> ReadPage:
        """The models' verdicts on what the fast path did not accept."""
        items = [_parse(values[i]) for i in rejected]
        report = self._validator.check_items(items)
        found: dict[int, list[str]] = {
            rejected[bad.index]: list(bad.errors) for bad in report.invalid
        }
        readings = {rejected[i]: reading for i, reading in report.readings.items()}
        for index, position in enumerate(rejected):
            reading = readings.get(position, items[index])
            try:
                keys[position] = self._key_of_reading(reading)
            except ObjectKeyError as error:
                found.setdefault(position, []).append(str(error))
            if isinstance(reading, dict):
                last_updated[position] = epoch_seconds(reading.get("last_updated"))
        errors.update((position, tuple(reasons)) for position, reasons in found.items())
        return ReadPage(
            values,
            keys,
            last_updated,
            dict(sorted(errors.items())),
            {rejected[i]: used for i, used in report.dialects.items()},
            report.examples,
            readings,
        )


def _parse(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        # Only a number beyond the double range gets here (the page was read as JSON).
        raise PartnerProtocolError(
            f"partner sent a body that is not JSON ({error.msg}; an object of {len(value)} bytes)"
        ) from None
