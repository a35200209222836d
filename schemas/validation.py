"""Validate a page of pulled OCPI objects and report exactly which ones are invalid.

The puller keeps every valid object and dead-letters the rest, so what it needs from validation
is the index of each bad object plus readable reasons. ``PageValidator.validate`` joins the
objects into JSON arrays and validates each with one pydantic-core call (no Python per object),
then groups the errors by the array index pydantic reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.ocpi import OcpiModel, model_for

__all__ = ["InvalidObject", "PageValidator", "format_error"]


@dataclass(frozen=True, slots=True)
class InvalidObject:
    """One object of a page that failed validation.

    ``index`` is its position in the page; ``errors`` are ``"path: message"`` strings such as
    ``evses[0].connectors[1].format: Input should be 'SOCKET' or 'CABLE'``.
    """

    index: int
    errors: tuple[str, ...]


def _format_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part[:1].isupper():
            # A union tag pydantic inserts (e.g. "EVSEParking"); OCPI field names are lowercase.
            continue
        else:
            path += f".{part}" if path else part
    return path or "(root)"


def format_error(error: Any) -> str:
    """Render one pydantic error (a dict of ``ValidationError.errors()``) as ``path: message``.

    The path is relative to the object: list indexes in brackets, field names dotted.
    """
    return f"{_format_path(error['loc'])}: {error['msg']}"


@cache
def _page_adapter(model: type[OcpiModel]) -> TypeAdapter[list[Any]]:
    # Building a TypeAdapter compiles a validator; do it once per model, not per page.
    return TypeAdapter(list[model])  # type: ignore[valid-type]


# Objects are validated in chunks of about this many bytes, one pydantic-core call per chunk.
# One call for a whole 2 MB page of Locations was 2x slower than per-object calls (1000 fresh
# model trees alive at once: cache misses and full garbage collections); 16 KiB chunks are as
# fast as per-object for Locations and 20% faster for Tokens (bench/bench_validation.py).
CHUNK_BYTES = 16 * 1024
# The same for already parsed objects: a page of 1000 tokens or locations in chunks of 50.
ITEMS_PER_CHUNK = 50
JSON_WORDING = {
    "model_type": "Input should be an object",
    "list_type": "Input should be a valid array",
}


class PageValidator:
    """Validates pages of one OCPI module in one version.

    Build it once per (version, module) and reuse it for every page.
    """

    def __init__(self, version: str, module: str) -> None:
        self.version = version
        self.module = module
        self.model = model_for(version, module)
        self._page = _page_adapter(self.model)

    def validate(self, objects: Sequence[bytes]) -> list[InvalidObject]:
        """Return the invalid objects of a page, in page order; ``[]`` if all are valid.

        Each element of ``objects`` must be the JSON text of exactly one value, as
        ``orjson.dumps`` produces it: consecutive elements are joined into one JSON array and
        validated in one call, so the i-th element is the i-th array item and pydantic's error
        locations name it. If the joined text does not parse or its item count differs (an
        element that is not one JSON value), that chunk's elements are validated one by one, so
        a malformed element is still reported at its own index.
        """
        invalid: list[InvalidObject] = []
        start = 0
        while start < len(objects):
            end, size = start, 0
            while end < len(objects) and (end == start or size < CHUNK_BYTES):
                size += len(objects[end])
                end += 1
            invalid.extend(self._validate_chunk(objects[start:end], start))
            start = end
        return invalid

    def validate_items(self, items: Sequence[Any]) -> list[InvalidObject]:
        """Like `validate`, for a page already parsed into Python values (as orjson gives).

        The models are strict, and the values of parsed JSON map one to one onto Python types,
        so this is the same check as `validate` on the same objects (a property test holds the
        two to identical results) without serialising them again. It is about twice as fast.
        """
        invalid: list[InvalidObject] = []
        for start in range(0, len(items), ITEMS_PER_CHUNK):
            chunk = items[start : start + ITEMS_PER_CHUNK]
            try:
                self._page.validate_python(chunk)
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_context=False, include_input=False)
                for error in errors:
                    # Python-side wording of two errors ("a valid list", "a valid dictionary
                    # or instance of Token"); say it as the JSON path does.
                    error["msg"] = JSON_WORDING.get(error["type"], error["msg"])
                grouped = _group_by_index(errors, len(chunk), start)
                assert grouped is not None, "python-mode errors always name an item index"
                invalid.extend(grouped)
        return invalid

    def _validate_chunk(self, chunk: Sequence[bytes], offset: int) -> list[InvalidObject]:
        try:
            items = self._page.validate_json(b"[" + b",".join(chunk) + b"]")
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            grouped = _group_by_index(errors, len(chunk), offset)
            return grouped if grouped is not None else self._validate_each(chunk, offset)
        if len(items) != len(chunk):
            return self._validate_each(chunk, offset)
        return []

    def _validate_each(self, chunk: Sequence[bytes], offset: int) -> list[InvalidObject]:
        invalid = []
        for index, raw in enumerate(chunk, start=offset):
            try:
                self.model.model_validate_json(raw)
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_context=False, include_input=False)
                invalid.append(InvalidObject(index, tuple(format_error(e) for e in errors)))
        return invalid


def _group_by_index(errors: Sequence[Any], count: int, offset: int) -> list[InvalidObject] | None:
    """Group a chunk's errors by object index; ``None`` if they cannot be attributed."""
    by_index: dict[int, list[str]] = {}
    for error in errors:
        loc = error["loc"]
        # An error at the array itself (invalid JSON) or an index past the end means the chunk
        # was not one item per element; the caller falls back to validating each element.
        if not loc or not isinstance(loc[0], int) or loc[0] >= count:
            return None
        message = format_error({"loc": loc[1:], "msg": error["msg"]})
        by_index.setdefault(loc[0], []).append(message)
    return [InvalidObject(offset + i, tuple(by_index[i])) for i in sorted(by_index)]
