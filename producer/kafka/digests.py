"""Stable 64-bit hashes of keys and of object content, for --skip-unchanged and tombstones. Pure.

Both are xxh3 (xxhash): fast, non-cryptographic, and enough for change detection and set
membership. A key's hash lives in memory only (`KeyState` hashes the keys it loads itself), so
its function may change between versions freely. A content digest is stored on
`<prefix>.digests`: those written before xxh3 (blake2b, 16 hex digits) are *legacy*; an object
whose stored digest is legacy is compared by the legacy digest of its content
(`legacy_content_digest`), so a change of digest function never makes an unchanged object look
changed, and its record is rewritten in the new form the next time the object is produced.
"""

from __future__ import annotations

import hashlib
import re

import orjson
import xxhash

_LAST_UPDATED = re.compile(rb'"last_updated":"[^"]*"')
_LAST_UPDATED_OPENING = b'"last_updated":"'
# The value of a digest record: a marker, then 16 hex digits (a legacy value has no marker).
DIGEST_MARKER = b"x"

_hash = xxhash.xxh3_64_intdigest


def key_hash(key: str) -> int:
    """A stable 64-bit hash of a Kafka key (Python's hash() differs per process)."""
    return _hash(key.encode())


def value_hash(value: bytes) -> int:
    """A 64-bit hash of a record's value (a window's memory of what it produced)."""
    return _hash(value)


def content_digest(value: bytes) -> int:
    """A 64-bit digest of an object's compact JSON without any `"last_updated":"…"` (some
    partners bump it without changing anything); never 0, which marks 'absent'."""
    start = value.find(_LAST_UPDATED_OPENING)
    if start < 0:
        return _hash(value) or 1
    digest = xxhash.xxh3_64()
    view = memoryview(value)
    done = 0
    while start >= 0:
        end = value.find(b'"', start + len(_LAST_UPDATED_OPENING))
        if end < 0:
            break  # no closing quote: not a string to leave out (the pattern's reading)
        digest.update(view[done:start])
        done = end + 1
        start = value.find(_LAST_UPDATED_OPENING, done)
    digest.update(view[done:])
    return digest.intdigest() or 1


def legacy_content_digest(value: bytes) -> int:
    """The digest earlier versions stored (blake2b of the object as orjson writes it, without
    any `last_updated`), to compare an object with a legacy digest record."""
    written = orjson.dumps(orjson.loads(value))
    digest = int.from_bytes(
        hashlib.blake2b(_LAST_UPDATED.sub(b"", written), digest_size=8).digest(), "little"
    )
    return digest or 1


def dead_content_hash(identity: str, raw_object: bytes) -> int:
    """A dead letter's identity (its key, else the object as JSON) with the object it carries:
    the same for every dead letter made of the same object (the record itself carries the
    instant it was made, so records differ)."""
    return hash((identity, raw_object))


def digest_value(digest: int) -> bytes:
    """A digest as the value of its record."""
    return DIGEST_MARKER + b"%016x" % digest


def read_digest_value(value: bytes) -> tuple[int, bool]:
    """(digest, whether it is legacy) of a digest record's value."""
    if value.startswith(DIGEST_MARKER):
        return int(value[len(DIGEST_MARKER) :], 16), False
    return int(value, 16), True
