"""The fast path of validation: each OCPI model's pydantic-core schema, translated to msgspec. Pure.

The pydantic models (`schemas.ocpi`) stay the schema's source of truth, its JSON Schema export
and its judge. This module reads a model's pydantic-core schema and builds msgspec Struct types
that decode an object's JSON bytes in C and accept **only objects the model accepts with no error
at all** (no dialect, nothing out of spec). Anything the fast path rejects goes to the model
(`schemas.validation`), which decides; so the fast path may reject more than the model (that costs
time, never a verdict), never less. tests/schemas/test_fastpath.py holds the two to it.

How each schema node is translated:

* models → Structs (unknown fields ignored, as `extra="allow"` keeps them unchecked); `default`
  → an optional field; `nullable` → `T | None`; `list`, `int`, `float`, `bool`, `literal` (a
  closed enum) → the same msgspec type with the same bounds;
* `str` → `str` with the same lengths and pattern; pydantic-core's (Rust) `$` matches only at the
  end of the text, so it becomes `\\Z` (Python's `$` also matches before a final newline);
* DateTime fields (the version's DateTime pattern): decoded through a hook that collects their
  text, and checked all at once per page (`check_datetimes`: numpy for the canonical
  `YYYY-MM-DDTHH:MM:SSZ`, the exact pattern for any other text); a Python regex per field costs
  more than the rest of a Token;
* CiString's printable-ASCII pattern is left out of the `ascii` decoder, which only runs on
  objects whose JSON is printable ASCII without escapes (then every string in them is);
* anything else (a model validator: the one cross-field rule; an unknown node) → a type nothing
  satisfies: objects that carry it always take the model's path.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from schemas.datetimes import epoch_seconds
from schemas.ocpi import model_for
from schemas.ocpi.base import ISO8601_OFFSET, PRINTABLE_ASCII, RFC3339_UTC

__all__ = ["FastPage", "FastPath", "check_datetimes", "fast_path", "is_plain_ascii"]

# Integers orjson reads as integers (beyond 64 bits it reads a float); msgspec bounds fit int64,
# so the fast path leaves 2**63 to 2**64 - 1 to the model as well.
_INT_LOW, _INT_HIGH = -(2**63), 2**63 - 1
# Satisfied by no JSON value: a non-string fails the type, a string the pattern.
_NEVER: Any = Annotated[str, msgspec.Meta(pattern=r"(?!)")]


class _Stamp:
    """A DateTime field (its text goes to the page's list of DateTimes to check)."""

    __slots__ = ()


class _TopStamp:
    """The object's own `last_updated` (its text is also the object's `last_updated`)."""

    __slots__ = ()


_STAMP = _Stamp()
_TOP_STAMP = _TopStamp()


def is_plain_ascii(raw: bytes) -> bool:
    """Whether every string in this JSON is printable ASCII as written: no byte above 0x7E
    (nor DEL) and no escape (a JSON string cannot hold raw control characters)."""
    return raw.isascii() and b"\\" not in raw and b"\x7f" not in raw


@dataclass(frozen=True, slots=True)
class FastPage:
    """What the fast path made of a page: per position, the decoded object or None (rejected:
    the model must judge it) and its own `last_updated` (epoch seconds, None if unreadable)."""

    accepted: list[Any]
    last_updated: list[int | None]
    everything: bool = False  # every object accepted (nearly every page)


class _Collector:
    """The DateTime texts a decoder meets, in order (msgspec calls `hook` for each)."""

    def __init__(self) -> None:
        self.stamps: list[str] = []
        self.tops: list[str] = []
        stamps, tops = self.stamps.append, self.tops.append

        def hook(kind: type, value: Any) -> Any:
            if type(value) is not str:
                raise TypeError("a DateTime must be a string")
            if kind is _TopStamp:
                tops(value)
                return _TOP_STAMP
            stamps(value)
            return _STAMP

        self.hook: Callable[[type, Any], Any] = hook


class FastPath:
    """The fast path of one OCPI version and module (build once, through `fast_path`)."""

    def __init__(self, version: str, module: str) -> None:
        self.version = version
        self.module = module
        schema = model_for(version, module).__pydantic_core_schema__
        datetime = RFC3339_UTC if version != "2.1.1" else ISO8601_OFFSET
        self._pattern = re.compile(_python_pattern(datetime))
        self._collector = _Collector()
        hook = self._collector.hook
        general = _Translation(schema, ascii_only=False, datetime=datetime).root()
        plain = _Translation(schema, ascii_only=True, datetime=datetime).root()
        self._general = msgspec.json.Decoder(general, dec_hook=hook).decode
        self._plain = msgspec.json.Decoder(plain, dec_hook=hook).decode
        self._plain_page: Callable[[bytes], Any] = msgspec.json.Decoder(
            list[plain],  # type: ignore[valid-type]
            dec_hook=hook,
        ).decode
        envelope = msgspec.defstruct("FastEnvelope", [("data", list[plain] | None, None)])  # type: ignore[valid-type]
        self._plain_envelope: Callable[[bytes], Any] = msgspec.json.Decoder(
            envelope, dec_hook=hook
        ).decode

    def read(self, raws: Sequence[bytes], text: bytes = b"") -> FastPage:
        """Decode each object of a page (each element the JSON of one object); `text` may be
        the page's whole envelope, whose `data` holds exactly these objects, to decode instead
        of a list made of them."""
        if not raws:
            return FastPage([], [])
        stamps, tops = self._collector.stamps, self._collector.tops
        stamps.clear()
        tops.clear()
        whole = text or b"[" + b",".join(raws) + b"]"
        if is_plain_ascii(whole):
            # Nearly every page: one decode for all its objects, one check of its DateTimes.
            try:
                if text:
                    accepted: list[Any] = self._plain_envelope(whole).data or []
                else:
                    accepted = self._plain_page(whole)
            except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
                pass
            else:
                if len(accepted) == len(raws) == len(tops) and not check_datetimes(
                    stamps, self._pattern
                ):
                    return self._with_last_updated(accepted, list(tops), decoded_all=True)
        return self._each(raws)

    def _each(self, raws: Sequence[bytes]) -> FastPage:
        """Decode the objects one by one: which ones the fast path accepts."""
        stamps, tops = self._collector.stamps, self._collector.tops
        stamps.clear()
        tops.clear()
        accepted: list[Any] = []
        texts: list[str | None] = []  # per position: its own last_updated as written
        starts: list[int] = []  # per position: where its DateTimes begin in `stamps`
        plain, general = self._plain, self._general
        for raw in raws:
            first, top = len(stamps), len(tops)
            starts.append(first)
            try:
                decoded = (plain if is_plain_ascii(raw) else general)(raw)
            except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
                del stamps[first:], tops[top:]
                accepted.append(None)
                texts.append(None)
                continue
            accepted.append(decoded)
            texts.append(tops[-1] if len(tops) > top else None)  # the last, if written twice
        for index in check_datetimes(stamps, self._pattern):
            accepted[bisect.bisect_right(starts, index) - 1] = None
        return self._with_last_updated(accepted, texts, decoded_all=False)

    def _with_last_updated(
        self, accepted: list[Any], texts: list[str | None], *, decoded_all: bool
    ) -> FastPage:
        """Check each accepted object's own `last_updated` (an object whose text the pattern
        rejects is left to the model) and read it as epoch seconds."""
        if decoded_all and set(map(len, texts)) == {20}:  # type: ignore[arg-type]
            # (decoded_all: no text is None)
            ok, values = _canonical_seconds(texts)  # type: ignore[arg-type]
            if ok.all():
                return FastPage(accepted, values.tolist(), everything=True)
        seconds: list[int | None] = [None] * len(texts)
        canonical = [i for i, t in enumerate(texts) if t is not None and len(t) == 20]
        if canonical:
            ok, values = _canonical_seconds([texts[i] for i in canonical])  # type: ignore[misc]
            for i, good, value in zip(canonical, ok.tolist(), values.tolist(), strict=True):
                seconds[i] = value if good else None
        search = self._pattern.search
        for i, text in enumerate(texts):
            if text is not None and (len(text) != 20 or seconds[i] is None):
                seconds[i] = epoch_seconds(text) if search(text) is not None else None
            if seconds[i] is None:
                accepted[i] = None  # no own last_updated the pattern accepts: the model decides
            elif accepted[i] is None:
                seconds[i] = None
        return FastPage(accepted, seconds)


@cache
def fast_path(version: str, module: str) -> FastPath:
    """The fast path of one version and module (built once per process)."""
    return FastPath(version, module)


# -- DateTimes, checked per page ---------------------------------------------------------------

# Columns of `YYYY-MM-DDTHH:MM:SSZ`: its digits (in pairs) and its separators.
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATOR_COLUMNS = [4, 7, 10, 13, 16, 19]
_SEPARATORS = np.frombuffer(b"--T::Z", dtype=np.uint8)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _canonical_seconds(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """For texts of 20 characters: which are `YYYY-MM-DDTHH:MM:SSZ` with a real date and time
    of day (what the DateTime patterns accept in that shape, less year 0), and their epoch
    seconds (as `schemas.datetimes.epoch_seconds` reads them)."""
    count = len(texts)
    try:
        data = "".join(texts).encode("ascii")
    except UnicodeEncodeError:
        return np.zeros(count, dtype=bool), np.zeros(count, dtype=np.int64)
    if len(data) != 20 * count:
        raise ValueError("texts of 20 characters only")
    chars = np.frombuffer(data, dtype=np.uint8).reshape(count, 20)
    digits = chars[:, _DIGITS] - np.uint8(ord("0"))  # below "0" wraps round to 208 and more
    ok = (digits <= 9).all(axis=1) & (chars[:, _SEPARATOR_COLUMNS] == _SEPARATORS).all(axis=1)
    # Pairs of digits as numbers (no matrix product: its BLAS threads would spin for it).
    pairs = digits[:, 0::2].astype(np.int64) * 10 + digits[:, 1::2]
    century, year, month, day, hour, minute, second = pairs.T
    year = century * 100 + year
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    # Year 0 is a DateTime the pattern accepts but Python's datetime (schemas.datetimes) cannot
    # read: left to the exact pattern and the one parser.
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59)
    ok &= (second <= 59) & (day <= _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2)))
    # Days from the civil date (Howard Hinnant's algorithm), floor division throughout.
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146_097 + day_of_era - 719_468
    return ok, days * 86_400 + hour * 3_600 + minute * 60 + second


def check_datetimes(texts: Sequence[str], pattern: re.Pattern[str]) -> list[int]:
    """The positions of the texts that `pattern` (a DateTime pattern, as `_python_pattern`
    makes it) rejects: canonical texts are checked all at once, any other one by the pattern."""
    if not texts:
        return []
    if set(map(len, texts)) == {20}:
        ok = _canonical_seconds(texts)[0]
        if ok.all():
            return []
        undecided = np.flatnonzero(~ok).tolist()
    else:
        canonical = [i for i, t in enumerate(texts) if len(t) == 20]
        undecided = [i for i, t in enumerate(texts) if len(t) != 20]
        if canonical:
            ok = _canonical_seconds([texts[i] for i in canonical])[0]
            undecided += [canonical[j] for j in np.flatnonzero(~ok).tolist()]
    search = pattern.search
    return sorted(i for i in undecided if search(texts[i]) is None)


# -- pydantic-core schema → msgspec types ------------------------------------------------------


def _python_pattern(pattern: str) -> str:
    """A pydantic-core (Rust) pattern as Python's `re` must read it to match the same texts."""
    if not pattern.endswith("$") or "$" in pattern[:-1]:
        raise ValueError(f"unexpected pattern {pattern!r}")
    return pattern[:-1] + r"\Z"


class _Translation:
    """One model's schema as msgspec types (one Struct per model; definitions resolved)."""

    def __init__(self, schema: Any, *, ascii_only: bool, datetime: str) -> None:
        self._schema = schema
        self._ascii_only = ascii_only
        self._datetime = datetime
        self._definitions: dict[str, Any] = {}
        self._structs: dict[str, Any] = {}
        self._building: set[str] = set()
        self._count = 0

    def root(self) -> Any:
        """The Struct of the model itself."""
        return self._type(self._schema, top=True)

    def _type(self, schema: Any, *, top: bool = False) -> Any:
        kind = schema["type"]
        if kind == "definitions":
            for definition in schema["definitions"]:
                self._definitions[definition["ref"]] = definition
            return self._type(schema["schema"], top=top)
        if kind == "definition-ref":
            return self._type(self._definitions[schema["schema_ref"]])
        if kind == "model":
            return self._struct(schema, top)
        if kind == "str":
            return self._string(schema)
        if kind == "literal":
            values = schema["expected"]
            if not values or not all(type(v) is str for v in values):
                return _NEVER
            return Literal[tuple(values)]
        if kind == "bool":
            return bool
        if kind == "int":
            if set(schema) - {"type", "metadata", "ge", "le", "strict"}:
                return _NEVER
            # The page's JSON parser reads an integer beyond 64 bits as a float, which the model
            # then refuses: the fast path accepts only what that parser reads as an integer.
            low, high = schema.get("ge"), schema.get("le")
            low = _INT_LOW if low is None else max(low, _INT_LOW)
            high = _INT_HIGH if high is None else min(high, _INT_HIGH)
            return Annotated[int, msgspec.Meta(ge=low, le=high)]
        if kind == "float":
            if schema.get("allow_inf_nan") or set(schema) - {"type", "metadata"}:
                return _NEVER  # bounds or NaN rules this translation does not carry
            return float  # msgspec refuses numbers out of the double range, as the model does
        if kind == "list":
            items: Any = list[self._type(schema["items_schema"])]  # type: ignore[misc]
            bounds = {
                k: schema[k] for k in ("min_length", "max_length") if schema.get(k) is not None
            }
            return Annotated[items, msgspec.Meta(**bounds)] if bounds else items
        if kind == "nullable":
            inner = self._type(schema["schema"])
            return inner | None
        if kind == "tagged-union":
            return self._json_type_union(schema)
        return _NEVER  # function-after (a model validator), or a node not translated

    def _struct(self, schema: Any, top: bool) -> Any:
        ref = schema.get("ref") or f"model{id(schema)}"
        if ref in self._structs:
            return self._structs[ref]
        if ref in self._building or schema.get("root_model") or schema.get("custom_init"):
            return _NEVER  # recursion or a custom model: left to the model
        fields_schema = schema["schema"]
        if fields_schema.get("type") != "model-fields" or fields_schema.get("computed_fields"):
            return _NEVER
        self._building.add(ref)
        fields: list[Any] = []
        for name, field in fields_schema["fields"].items():
            inner = field["schema"]
            if field.get("validation_alias") or field.get("frozen"):
                annotation: Any = _NEVER
            elif inner["type"] == "default":
                default = inner.get("default")
                if "default_factory" in inner or default is not None:
                    annotation, default = _NEVER, None
                else:
                    annotation = self._field(name, inner["schema"], top)
                fields.append((name, annotation, default))
                continue
            else:
                annotation = self._field(name, inner, top)
            fields.append((name, annotation))
        self._building.discard(ref)
        self._count += 1
        forbid = schema.get("config", {}).get("extra_fields_behavior") == "forbid"
        struct = msgspec.defstruct(
            f"Fast{self._count}", fields, kw_only=True, forbid_unknown_fields=forbid, gc=False
        )
        self._structs[ref] = struct
        return struct

    def _field(self, name: str, schema: Any, top: bool) -> Any:
        if top and name == "last_updated" and self._is_datetime(schema):
            return _TopStamp
        return self._type(schema)

    def _is_datetime(self, schema: Any) -> bool:
        return bool(schema.get("type") == "str" and schema.get("pattern") == self._datetime)

    def _string(self, schema: Any) -> Any:
        if set(schema) - {"type", "metadata", "min_length", "max_length", "pattern", "strict"}:
            return _NEVER  # a str rule this translation does not carry
        pattern = schema.get("pattern")
        lengths = {k: schema[k] for k in ("min_length", "max_length") if schema.get(k) is not None}
        if pattern == self._datetime and not lengths:
            return _Stamp
        if pattern == PRINTABLE_ASCII and self._ascii_only:
            pattern = None
        meta = dict(lengths)
        if pattern is not None:
            meta["pattern"] = _python_pattern(pattern)
        return Annotated[str, msgspec.Meta(**meta)] if meta else str

    def _json_type_union(self, schema: Any) -> Any:
        """A tagged union whose choices differ in JSON type (a string, an object): msgspec
        picks by type, as the discriminator does (2.3.0's Parking reference)."""
        choices = [self._type(choice) for choice in schema["choices"].values()]
        strings = [c for c in choices if c is str or getattr(c, "__origin__", None) is str]
        structs = [c for c in choices if isinstance(c, type) and issubclass(c, msgspec.Struct)]
        if len(choices) != 2 or len(strings) != 1 or len(structs) != 1:
            return _NEVER
        discriminator = schema.get("discriminator")
        tags = list(schema["choices"])
        if not callable(discriminator):
            return _NEVER
        by_tag = dict(zip(tags, choices, strict=True))
        if by_tag.get(discriminator({})) is not structs[0]:
            return _NEVER
        if by_tag.get(discriminator("")) is not strings[0]:
            return _NEVER
        return strings[0] | structs[0]
