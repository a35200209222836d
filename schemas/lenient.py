"""How ``--validation lenient`` reads an object that the strict model rejected. Pure functions.

Lenient mode runs the strict model first; only the errors it reports are looked at here, so a
canonical object never reaches this module. Each error is one of:

* **rewritable**: a DateTime in a dialect `schemas.datetimes` can read, or a closed-enum value in
  other letter case than listed. The object's *reading* (a copy, never the partner's object) gets
  the canonical value, and the strict model validates that reading again.
* **tolerated**: a value of the right JSON type that breaks a constraint on it (length, a pattern
  other than DateTime, a range, a cross-field rule): reported as ``out_of_spec``, still usable.
* **fatal**: everything else: a required field missing or ``null``, an empty ``+`` list or empty
  required string (no value either), a JSON type that cannot be read as the field's type, a
  DateTime no dialect explains, a closed-enum value not in the version's list in any case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from schemas.datetimes import parse_datetime
from schemas.dialects import Dialect
from schemas.ocpi.base import ISO8601_OFFSET, RFC3339_UTC

if TYPE_CHECKING:
    from schemas.validation import FieldError

__all__ = ["Rewrite", "find_rewrites", "format_path", "is_tolerated", "rewritten"]

# The DateTime regex of each version (its pydantic-core pattern) and which of the timestamp
# dialects that version's spec itself allows: 2.1.1 says ISO 8601 and its examples use +02:00.
_DATETIME_SPEC_FORMS: dict[str, frozenset[Dialect]] = {
    RFC3339_UTC: frozenset(),
    ISO8601_OFFSET: frozenset({Dialect.NUMERIC_OFFSET}),
}

# Constraint errors on a value whose JSON type is right: the data is there, just out of spec.
# Not here, hence fatal: "missing", every "*_type" error, "literal_error", "string_too_short"
# and "too_short" (an empty required string or "+" list carries no value either), JSON errors.
_TOLERATED = frozenset(
    {
        "string_too_long",
        "string_pattern_mismatch",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "value_error",
    }
)


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One value of an object's reading: ``value`` at ``path`` (keys and list indexes)."""

    path: tuple[str | int, ...]
    value: str
    dialects: frozenset[Dialect]


def format_path(loc: Iterable[int | str]) -> str:
    """``evses[0].connectors[1].format`` for a pydantic error location; ``(root)`` if empty."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part[:1].isupper():  # else a union tag (e.g. "EVSEParking"), see _object_path
            path += f".{part}" if path else part
    return path or "(root)"


def is_tolerated(error: FieldError) -> bool:
    """Whether lenient mode keeps an object despite this error (reporting ``out_of_spec``)."""
    if error.type == "string_pattern_mismatch":
        # A DateTime that reaches this point was not readable in any dialect: fatal.
        return _pattern(error) not in _DATETIME_SPEC_FORMS
    return error.type in _TOLERATED


def find_rewrites(errors: Sequence[FieldError]) -> list[Rewrite]:
    """The values of one object that lenient mode reads differently from its text.

    ``errors`` are the strict model's errors for the object, with their inputs and contexts.
    """
    rewrites = []
    for error in errors:
        value = error.input
        if type(value) is not str:
            continue
        if error.type == "string_pattern_mismatch":
            spec_forms = _DATETIME_SPEC_FORMS.get(_pattern(error) or "")
            reading = None if spec_forms is None else _read_datetime(value)
            if spec_forms is None or reading is None:
                continue
            canonical, dialects = reading
            rewrites.append(Rewrite(_object_path(error.loc), canonical, dialects - spec_forms))
        elif error.type == "literal_error" and value.isascii():
            # isascii: "\u212a".lower() is "k"; a look-alike letter is a different value.
            expected = error.ctx.get("expected") if error.ctx else None
            listed = _listed_by_case(expected) if isinstance(expected, str) else {}
            spelling = listed.get(value.lower())
            if spelling is not None:
                rewrites.append(
                    Rewrite(_object_path(error.loc), spelling, frozenset({Dialect.ENUM_CASE}))
                )
    return rewrites


def rewritten(item: Any, rewrites: Sequence[Rewrite]) -> Any:
    """A copy of ``item`` with every rewrite applied; ``item`` itself is never changed.

    Only the dicts and lists on the rewritten paths are copied; the rest is shared.
    """
    root = _shallow_copy(item)
    copied = {id(root)}
    for rewrite in rewrites:
        node = root
        for step in rewrite.path[:-1]:
            child = node[step]
            if id(child) not in copied:
                child = node[step] = _shallow_copy(child)
                copied.add(id(child))
            node = child
        node[rewrite.path[-1]] = rewrite.value
    return root


def _shallow_copy(node: Any) -> Any:
    if type(node) is dict:
        return node.copy()
    if type(node) is list:
        return node.copy()
    if isinstance(node, dict | list):
        return type(node)(node)
    raise TypeError(f"cannot rewrite inside a {type(node).__name__}")  # pydantic named a field


@lru_cache(maxsize=4096)
def _object_path(loc: tuple[int | str, ...]) -> tuple[str | int, ...]:
    # Leave out the union tags pydantic inserts (e.g. "EVSEParking"): OCPI field names are
    # lowercase. Cached: the same locations recur in every object of a page.
    return tuple(part for part in loc if isinstance(part, int) or not part[:1].isupper())


@lru_cache(maxsize=4096)
def _read_datetime(text: str) -> tuple[str, frozenset[Dialect]] | None:
    # Cached: timestamps recur within an object (a Location's EVSEs and connectors often share
    # its last_updated) and across a page, so each text is parsed once.
    parsed = parse_datetime(text)
    return None if parsed is None else (parsed.canonical, parsed.dialects)


def _pattern(error: FieldError) -> str | None:
    pattern = error.ctx.get("pattern") if error.ctx else None
    return pattern if isinstance(pattern, str) else None


_QUOTED = re.compile(r"'([^']*)'")


@cache
def _listed_by_case(expected: str) -> Mapping[str, str]:
    """``{"rfid": "RFID", ...}`` from pydantic's ``'RFID', 'OTHER' or 'EMAID'`` listing.

    One listing per closed enum field, so the cache stays small.
    """
    return {value.lower(): value for value in _QUOTED.findall(expected)}
