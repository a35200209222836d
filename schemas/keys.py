"""Kafka keys for pulled OCPI objects.

A key names the object's owner and its identity within that owner:

* ``{country_code}/{party_id}/{id}`` for locations, tariffs, sessions and CDRs;
* ``{country_code}/{party_id}/{uid}/{type}`` for tokens (a uid is unique only with its type).

``object_key`` reads the raw parsed JSON (a ``dict``), not a model: it runs for every object on
the hot path and must also key objects that failed validation (dead letters).

Case: parts the spec types as CiString are upper-cased (ASCII only), so ``nl/tnm/loc1`` and
``NL/TNM/LOC1`` are the same key; case-sensitive parts (2.1.1 ``id``/``uid``) are kept as sent.
The token ``type`` is read canonically: a value the version lists, in other letter case
(``rfid``), is keyed by its listed spelling (``RFID``), as lenient validation reads it, also where
the version's enum is open (2.3.0) and for dead letters; any other value is kept as sent. So a
key never depends on the dialect a partner writes.

Separator: inside every part ``%`` becomes ``%25`` and ``/`` becomes ``%2F`` (in that order), so
a part can never be mistaken for two and the original value can be recovered with
``urllib.parse.unquote``. Parts without ``/`` or ``%`` are unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from schemas.ocpi import model_for

__all__ = [
    "KeyFunction",
    "ObjectKeyError",
    "PartnerIdentity",
    "canonical_token_type",
    "key_function",
    "object_key",
    "page_key_function",
]


class ObjectKeyError(ValueError):
    """An object (or the call) lacks what is needed to build its Kafka key."""


@dataclass(frozen=True, slots=True)
class PartnerIdentity:
    """The party at the other end of an OCPI connection (from its credentials).

    Used as the owner of 2.1.1 objects, which carry no ``country_code``/``party_id``.
    """

    country_code: str
    party_id: str


# Which identity fields each (version, module) keys on, and whether each is case-insensitive.
# 2.1.1: ids are case-sensitive string(n), except the CDR id, which the 2.1.1 table types as
# CiString(36). 2.2.1/2.3.0: every id is a CiString. The token type is an enum value: case
# matters (and 2.3.0's open TokenType may carry values we have never seen).
_Identity = tuple[tuple[str, bool], ...]
_ID_211: _Identity = (("id", False),)
_ID_CI: _Identity = (("id", True),)
_TOKEN_211: _Identity = (("uid", False), ("type", False))
_TOKEN_CI: _Identity = (("uid", True), ("type", False))

_IDENTITY: dict[tuple[str, str], _Identity] = {
    ("2.1.1", "tokens"): _TOKEN_211,
    ("2.1.1", "locations"): _ID_211,
    ("2.1.1", "tariffs"): _ID_211,
    ("2.1.1", "sessions"): _ID_211,
    ("2.1.1", "cdrs"): _ID_CI,
    **{(version, "tokens"): _TOKEN_CI for version in ("2.2.1", "2.3.0")},
    **{
        (version, module): _ID_CI
        for version in ("2.2.1", "2.3.0")
        for module in ("locations", "tariffs", "sessions", "cdrs")
    },
}

# Versions whose objects name their owner; for the others the partner identity is the owner.
_SELF_OWNED = frozenset({"2.2.1", "2.3.0"})

_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _ascii_upper(text: str) -> str:
    """Upper-case a-z only; str.upper() is the same for ASCII text and 8x faster than translate."""
    return text.upper() if text.isascii() else text.translate(_ASCII_UPPER)


def _part(value: Any, what: str) -> str:
    """Check one key part; a missing, non-string or empty part cannot identify anything."""
    if not isinstance(value, str):
        shown = "missing" if value is None else f"a {type(value).__name__}, not a string"
        raise ObjectKeyError(f"cannot build key: {what} is {shown}")
    if not value:
        raise ObjectKeyError(f"cannot build key: {what} is empty")
    return value


@cache
def _listed_token_types(version: str) -> tuple[frozenset[str], Mapping[str, str]]:
    """The token types `version`'s model lists, and each by its lower-case ASCII spelling."""
    listed: tuple[str, ...] = ()
    for meta in model_for(version, "tokens").model_fields["type"].metadata:
        listed = getattr(meta, "values", listed)  # OneOf (closed) or OpenEnum (2.3.0)
    return frozenset(listed), {value.lower(): value for value in listed}


def canonical_token_type(version: str, value: str) -> str:
    """A token type as keys read it: a listed value in other ASCII letter case becomes the
    listed spelling (``rfid`` → ``RFID``); anything else is kept as sent."""
    listed, by_lower = _listed_token_types(version)
    if value in listed or not value.isascii():
        # isascii: "\u212a".lower() is "k"; a look-alike letter is a different value.
        return value
    return by_lower.get(value.lower(), value)


def _encode(part: str, case_insensitive: bool) -> str:
    if case_insensitive:
        # ASCII only: CiString is ASCII by definition, and str.upper() would turn "ß" into "SS".
        part = _ascii_upper(part)
    if "%" in part:
        part = part.replace("%", "%25")
    if "/" in part:
        part = part.replace("/", "%2F")
    return part


def object_key(
    module: str, version: str, obj: Mapping[str, Any], partner: PartnerIdentity | None
) -> str:
    """Return the Kafka key of one OCPI object (the raw parsed JSON of ``module``/``version``).

    2.2.1 and 2.3.0 objects are keyed by their own ``country_code``/``party_id`` (a hub feed holds
    objects of many parties), 2.1.1 objects by ``partner``, which is then required. Raises
    ``ObjectKeyError`` when a part is missing, not a string or empty, when ``partner`` is needed
    but ``None``, or for an unknown module/version.
    """
    identity = _IDENTITY.get((version, module))
    if identity is None:
        raise ObjectKeyError(
            f"cannot build key: unknown OCPI module {module!r} in version {version!r}"
        )
    if not isinstance(obj, Mapping):
        raise ObjectKeyError(f"cannot build key: the {module} object is not a JSON object")
    if version in _SELF_OWNED:
        country_code = _part(obj.get("country_code"), f"{module} country_code")
        party_id = _part(obj.get("party_id"), f"{module} party_id")
    else:
        if partner is None:
            raise ObjectKeyError(
                f"cannot build key: OCPI {version} {module} objects carry no country_code/party_id,"
                " so the partner identity is required"
            )
        country_code = _part(partner.country_code, "partner country_code")
        party_id = _part(partner.party_id, "partner party_id")
    parts = [_encode(country_code, True), _encode(party_id, True)]
    for field, case_insensitive in identity:
        part = _part(obj.get(field), f"{module} {field}")
        if module == "tokens" and field == "type":
            part = canonical_token_type(version, part)
        parts.append(_encode(part, case_insensitive))
    return "/".join(parts)


KeyFunction = Callable[[Mapping[str, Any]], str]


def key_function(
    module: str, version: str, partner: PartnerIdentity | None, *, attributes: bool = False
) -> Callable[[Any], str]:
    """A fast `object_key` for one module and version (the puller's hot path).

    The common case (every part a non-empty string without `/` or `%`) is joined directly; any
    other object goes through `object_key`, which encodes or raises exactly as documented.
    With `attributes` the function reads an object's fields as attributes (a decoded struct)
    instead of as mapping items; the key is the same.
    """
    identity = _IDENTITY.get((version, module))
    if identity is None:
        raise ObjectKeyError(
            f"cannot build key: unknown OCPI module {module!r} in version {version!r}"
        )
    self_owned = version in _SELF_OWNED
    fields = [field for field, _ in identity]
    flags = [case_insensitive for _, case_insensitive in identity]
    if self_owned:
        fields, flags = ["country_code", "party_id", *fields], [True, True, *flags]
    elif partner is None:
        return lambda obj: object_key(module, version, _mapping(obj, attributes), partner)
    owner = (
        ""
        if partner is None or self_owned
        else (f"{_encode(partner.country_code, True)}/{_encode(partner.party_id, True)}/")
    )
    get = operator.attrgetter(*fields) if attributes else operator.itemgetter(*fields)
    slashes = len(fields) - 1
    all_upper = all(flags)
    last_kept = len(flags) > 1 and all(flags[:-1]) and not flags[-1]
    none_upper = not any(flags)
    if not (all_upper or last_kept or none_upper):  # no such identity today
        return lambda obj: object_key(module, version, _mapping(obj, attributes), partner)
    # The token type is the last part; its listed spellings need no look-up.
    listed_types = _listed_token_types(version)[0] if module == "tokens" else None

    def slow(obj: Any) -> str:
        return object_key(module, version, _mapping(obj, attributes), partner)

    def fast(obj: Any) -> str:
        try:
            values = get(obj)
            joined = values if slashes == 0 else "/".join(values)
        except (KeyError, TypeError, AttributeError):
            return slow(obj)
        # One check of the joined string stands for every part: all strings, none empty, no
        # "/" or "%" inside (else object_key encodes or raises, as documented).
        if (
            type(joined) is not str
            or not joined
            or "%" in joined
            or joined.count("/") != slashes
            or "//" in joined
            or joined[0] == "/"
            or joined[-1] == "/"
        ):
            return slow(obj)
        if listed_types is not None and values[-1] not in listed_types:
            return slow(obj)  # a token type in other case, or one the version does not list
        if all_upper:
            joined = _ascii_upper(joined)
        elif last_kept:
            head, _, tail = joined.rpartition("/")
            joined = f"{_ascii_upper(head)}/{tail}"
        return owner + joined

    return fast


def page_key_function(
    module: str, version: str, partner: PartnerIdentity | None, *, attributes: bool = False
) -> Callable[[Sequence[Any]], list[str] | None]:
    """`object_key` of every object of a page at once (the page reader's hot path).

    Returns the keys when every object is the common case (each part a non-empty string without
    `/`, `%` or a line break, and a token type as the version lists it), else None: the caller
    then keys each object with `key_function`, which encodes or raises as documented. One check
    of the page's keys joined stands for a check of each.
    """
    identity = _IDENTITY.get((version, module))
    if identity is None:
        raise ObjectKeyError(
            f"cannot build key: unknown OCPI module {module!r} in version {version!r}"
        )
    self_owned = version in _SELF_OWNED
    fields = [field for field, _ in identity]
    flags = [case_insensitive for _, case_insensitive in identity]
    if self_owned:
        flags = [True, True, *flags]
        fields = ["country_code", "party_id", *fields]
    elif partner is None:
        return lambda objects: None
    owner = "" if self_owned or partner is None else _owner(partner)
    listed = _listed_token_types(version)[0] if module == "tokens" else None
    if all(flags) or (
        listed is not None
        and all(flags[:-1])
        and all(t.isascii() and t == t.upper() for t in listed)
    ):
        upper = True  # (a listed token type is upper case: upper-casing it changes nothing)
    elif not any(flags):
        upper = False
    else:
        return lambda objects: None  # no such identity today
    get = operator.attrgetter(*fields) if attributes else operator.itemgetter(*fields)
    slashes = len(fields) - 1
    last = operator.itemgetter(-1)

    def keys(objects: Sequence[Any]) -> list[str] | None:
        if not objects:
            return []
        try:
            parts = list(map(get, objects))
            joined = parts if slashes == 0 else list(map("/".join, parts))
            if listed is not None and not set(map(last, parts)) <= listed:
                return None
            text = "\n".join(joined)
        except (KeyError, TypeError, AttributeError):
            return None
        count = len(joined)
        # No part holds `/`, `%` or a line break (each would add one), and none is empty.
        if (
            "%" in text
            or text.count("/") != slashes * count
            or text.count("\n") != count - 1
            or "//" in text
            or "\n\n" in text
            or "\n/" in text
            or "/\n" in text
            or text[:1] in ("", "/", "\n")
            or text[-1] in ("/", "\n")
        ):
            return None
        if upper:
            text = _ascii_upper(text)
        found = text.split("\n")
        return [owner + key for key in found] if owner else found

    return keys


def _owner(partner: PartnerIdentity) -> str:
    return f"{_encode(partner.country_code, True)}/{_encode(partner.party_id, True)}/"


def _mapping(obj: Any, attributes: bool) -> Any:
    """What `object_key` reads: the object itself, or its key fields of a decoded struct."""
    if not attributes:
        return obj
    names = ("country_code", "party_id", "uid", "type", "id")
    return {name: getattr(obj, name) for name in names if hasattr(obj, name)}
