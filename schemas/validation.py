"""Validate a page of pulled OCPI objects and report exactly which ones are invalid.

The puller keeps every valid object and dead-letters the rest, so what it needs from validation
is the index of each bad object plus readable reasons. ``PageValidator`` joins the objects into
JSON arrays (or chunks of parsed objects) and validates each with one pydantic-core call (no
Python per object), then groups the errors by the array index pydantic reports.

Two modes (``--validation``): ``strict`` judges by the version's models alone. ``lenient`` (the
default) runs exactly the same strict check first, so canonical pages cost what they cost in
strict mode; only the objects that fail are looked at again (`schemas.lenient`), and those that
are still usable are kept, with the dialects they used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, get_args

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas import lenient
from schemas.dialects import Dialect
from schemas.ocpi import OcpiModel, model_for

__all__ = [
    "VALIDATION_MODES",
    "FieldError",
    "InvalidObject",
    "PageReport",
    "PageValidator",
    "ValidationMode",
    "format_error",
]

ValidationMode = Literal["strict", "lenient"]
VALIDATION_MODES: tuple[ValidationMode, ...] = get_args(ValidationMode)


@dataclass(frozen=True, slots=True)
class InvalidObject:
    """One object of a page that failed validation.

    ``index`` is its position in the page; ``errors`` are ``"path: message"`` strings such as
    ``evses[0].connectors[1].format: Input should be 'SOCKET' or 'CABLE'``.
    """

    index: int
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One pydantic error of one object, as lenient mode reasons about it.

    ``loc`` is relative to the object (the page index removed); ``input`` is the value at
    ``loc`` and ``ctx`` pydantic's context (the pattern, the listed values).
    """

    loc: tuple[int | str, ...]
    type: str
    msg: str
    input: Any = None
    ctx: Mapping[str, Any] | None = None

    def __str__(self) -> str:
        return f"{lenient.format_path(self.loc)}: {self.msg}"


@dataclass(frozen=True, slots=True)
class PageReport:
    """What validating one page found.

    ``invalid``: the objects to dead-letter, in page order (as `PageValidator.validate` returns).
    ``dialects``: for each *valid* object that used dialects (lenient mode only), which ones;
    objects without dialects are absent. ``readings``: for those objects whose values lenient
    mode reads differently from their text (a DateTime in a dialect, an enum in other case), a
    copy with the canonical values, for our own logic (keys, windows); the partner's object is
    never changed. ``examples``: per dialect, where it first occurred on the page (a path, and
    for ``out_of_spec`` the constraint), for warnings.
    """

    invalid: list[InvalidObject]
    dialects: dict[int, frozenset[Dialect]] = field(default_factory=dict)
    readings: dict[int, Any] = field(default_factory=dict)
    examples: dict[Dialect, str] = field(default_factory=dict)

    def reading(self, index: int, item: Any) -> Any:
        """The object at ``index`` as our own logic should read it: its reading if it has one,
        else ``item`` (the object as the partner sent it)."""
        return self.readings.get(index, item)

    def dialect_counts(self) -> dict[Dialect, int]:
        """Dialect → number of valid objects on this page that used it."""
        return dict(Counter(d for used in self.dialects.values() for d in used))


def format_error(error: Any) -> str:
    """Render one pydantic error (a dict of ``ValidationError.errors()``) as ``path: message``.

    The path is relative to the object: list indexes in brackets, field names dotted.
    """
    return f"{lenient.format_path(error['loc'])}: {error['msg']}"


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
# A page's failures by object index. Strict mode records each error as its final text (as
# before lenient mode existed, and as cheaply); lenient mode as a FieldError it can reason about.
_Failures = dict[int, list[Any]]


class PageValidator:
    """Validates pages of one OCPI module in one version, in ``strict`` or ``lenient`` mode.

    Build it once per (version, module, mode) and reuse it for every page.
    """

    def __init__(self, version: str, module: str, mode: ValidationMode = "lenient") -> None:
        if mode not in VALIDATION_MODES:
            raise ValueError(f"validation mode must be one of {VALIDATION_MODES}, not {mode!r}")
        self.version = version
        self.module = module
        self.mode = mode
        self.model = model_for(version, module)
        self._page = _page_adapter(self.model)
        # Lenient mode reads each error's input and context; strict never needs them.
        self._details = mode == "lenient"
        self._record: Callable[[Any, tuple[int | str, ...]], Any] = (
            _field_error if self._details else _message
        )

    def validate(self, objects: Sequence[bytes]) -> list[InvalidObject]:
        """Return the invalid objects of a page, in page order; ``[]`` if all are valid.

        Each element of ``objects`` must be the JSON text of exactly one value, as
        ``orjson.dumps`` produces it: consecutive elements are joined into one JSON array and
        validated in one call, so the i-th element is the i-th array item and pydantic's error
        locations name it. If the joined text does not parse or its item count differs (an
        element that is not one JSON value), that chunk's elements are validated one by one, so
        a malformed element is still reported at its own index.
        """
        return self.check(objects).invalid

    def validate_items(self, items: Sequence[Any]) -> list[InvalidObject]:
        """Like `validate`, for a page already parsed into Python values (as orjson gives).

        The models are strict, and the values of parsed JSON map one to one onto Python types,
        so this is the same check as `validate` on the same objects (a property test holds the
        two to identical results) without serialising them again. It is about twice as fast.
        """
        return self.check_items(items).invalid

    def check(self, objects: Sequence[bytes]) -> PageReport:
        """`validate`, with the dialects and readings of lenient mode (`PageReport`)."""
        failures: _Failures = {}
        start = 0
        while start < len(objects):
            end, size = start, 0
            while end < len(objects) and (end == start or size < CHUNK_BYTES):
                size += len(objects[end])
                end += 1
            failures.update(self._chunk_failures(objects[start:end], start))
            start = end
        if not failures or self.mode == "strict":
            return _strict_report(failures)
        items: dict[int, Any] = {}
        for index in failures:
            try:
                items[index] = orjson.loads(objects[index])
            except orjson.JSONDecodeError:
                continue  # not JSON: judged by its strict errors alone, which are fatal
        return self._read_leniently(items, failures)

    def check_items(self, items: Sequence[Any]) -> PageReport:
        """`validate_items`, with the dialects and readings of lenient mode (`PageReport`)."""
        failures = self._item_failures(items)
        if not failures or self.mode == "strict":
            return _strict_report(failures)
        return self._read_leniently(dict(enumerate(items)), failures)

    def _item_failures(self, items: Sequence[Any]) -> _Failures:
        failures: _Failures = {}
        for start in range(0, len(items), ITEMS_PER_CHUNK):
            chunk = items[start : start + ITEMS_PER_CHUNK]
            try:
                self._page.validate_python(chunk)
            except ValidationError as exc:
                # Python-side wording of two errors ("a valid list", "a valid dictionary or
                # instance of Token"); say it as the JSON path does.
                grouped = self._group_by_index(exc, len(chunk), start, JSON_WORDING)
                assert grouped is not None, "python-mode errors always name an item index"
                failures.update(grouped)
        return failures

    def _chunk_failures(self, chunk: Sequence[bytes], offset: int) -> _Failures:
        try:
            items = self._page.validate_json(b"[" + b",".join(chunk) + b"]")
        except ValidationError as exc:
            grouped = self._group_by_index(exc, len(chunk), offset)
            return grouped if grouped is not None else self._each_failures(chunk, offset)
        if len(items) != len(chunk):
            return self._each_failures(chunk, offset)
        return {}

    def _each_failures(self, chunk: Sequence[bytes], offset: int) -> _Failures:
        failures: _Failures = {}
        for index, raw in enumerate(chunk, start=offset):
            try:
                self.model.model_validate_json(raw)
            except ValidationError as exc:
                failures[index] = [self._record(e, e["loc"]) for e in self._errors(exc)]
        return failures

    def _group_by_index(
        self,
        exc: ValidationError,
        count: int,
        offset: int,
        wording: Mapping[str, str] | None = None,
    ) -> _Failures | None:
        """A chunk's errors by object index; ``None`` if they cannot be attributed."""
        by_index: _Failures = {}
        record = self._record
        for error in self._errors(exc):
            loc = error["loc"]
            # An error at the array itself (invalid JSON) or an index past the end means the
            # chunk was not one item per element; the caller falls back to each element.
            if not loc or not isinstance(loc[0], int) or loc[0] >= count:
                return None
            if wording is not None:
                error["msg"] = wording.get(error["type"], error["msg"])
            by_index.setdefault(offset + loc[0], []).append(record(error, loc[1:]))
        return dict(sorted(by_index.items()))

    def _errors(self, exc: ValidationError) -> list[Any]:
        details = self._details
        return exc.errors(include_url=False, include_context=details, include_input=details)

    def _read_leniently(self, items: Mapping[int, Any], failures: _Failures) -> PageReport:
        """Judge the objects strict rejected: rewrite what a dialect explains, validate those
        readings again, and keep every object whose remaining errors are all tolerated."""
        rewrites = {index: lenient.find_rewrites(errors) for index, errors in failures.items()}
        readings = {
            index: lenient.rewritten(items[index], found)
            for index, found in rewrites.items()
            if found and index in items
        }
        remaining = dict(failures)
        remaining.update({index: [] for index in readings})
        remaining.update(self._item_failures_of(readings))
        report = PageReport([])
        for index, errors in sorted(remaining.items()):
            fatal = [e for e in errors if not lenient.is_tolerated(e)]
            if fatal:
                report.invalid.append(InvalidObject(index, tuple(str(e) for e in fatal)))
                continue
            used = _NONE.union(*[rewrite.dialects for rewrite in rewrites[index]])
            if index in readings:
                report.readings[index] = readings[index]
                for dialect in used - report.examples.keys():
                    path = next(r.path for r in rewrites[index] if dialect in r.dialects)
                    report.examples[dialect] = lenient.format_path(path)
            if errors:
                used |= _OUT_OF_SPEC
                report.examples.setdefault(Dialect.OUT_OF_SPEC, str(errors[0]))
            if used:
                report.dialects[index] = used
        return report

    def _item_failures_of(self, readings: Mapping[int, Any]) -> _Failures:
        """Strict failures of the readings, by their objects' page indexes."""
        indexes = list(readings)
        found = self._item_failures([readings[i] for i in indexes])
        return {indexes[position]: errors for position, errors in found.items()}


_NONE: frozenset[Dialect] = frozenset()
_OUT_OF_SPEC = frozenset({Dialect.OUT_OF_SPEC})


def _message(error: Any, loc: tuple[int | str, ...]) -> str:
    return f"{lenient.format_path(loc)}: {error['msg']}"


def _field_error(error: Any, loc: tuple[int | str, ...]) -> FieldError:
    return FieldError(loc, error["type"], error["msg"], error.get("input"), error.get("ctx"))


def _strict_report(failures: _Failures) -> PageReport:
    """The report of strict mode: each failure an invalid object, its errors as text."""
    return PageReport([InvalidObject(i, tuple(errors)) for i, errors in sorted(failures.items())])
