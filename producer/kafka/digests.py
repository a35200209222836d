"""Stable 64-bit hashes of keys and of object content, for --skip-unchanged and tombstones. Pure."""

from __future__ import annotations

import hashlib
import re

_LAST_UPDATED = re.compile(rb'"last_updated":"[^"]*"')


def key_hash(key: str) -> int:
    """A stable 64-bit hash of a Kafka key (Python's hash() differs per process)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def content_digest(value: bytes) -> int:
    """A 64-bit digest of an object's JSON without any `last_updated` (P8: partners bump it
    without changing anything); never 0, which marks 'absent'."""
    digest = int.from_bytes(
        hashlib.blake2b(_LAST_UPDATED.sub(b"", value), digest_size=8).digest(), "little"
    )
    return digest or 1


def dead_content_hash(identity: str, raw_object: bytes) -> int:
    """A dead letter's identity (its key, else the object as JSON) with the object it carries:
    the same for every dead letter made of the same object (the record itself carries the
    instant it was made, so records differ)."""
    return hash((identity, raw_object))
