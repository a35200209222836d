"""Content digests and key hashes (`producer.kafka.digests`), pure.

A content digest ignores every `"last_updated":"…"` (P8) and nothing else; it is never 0 (which
marks "absent"); a digest record says which function made it, so digests written before xxh3
(16 hex digits of blake2b) are still compared by the function that made them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from producer.kafka.digests import (
    content_digest,
    digest_value,
    key_hash,
    legacy_content_digest,
    read_digest_value,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["last_updated", "id", "x", "a"]), children, max_size=4)
    ),
    max_leaves=12,
)
stamps = st.sampled_from(["2024-01-01T00:00:00Z", "2025-06-30 12:00:00+02:00", "", "x"])


def without_last_updated(value: bytes) -> bytes:
    """What the digest must stand for: the text with every `"last_updated":"…"` left out."""
    return re.sub(rb'"last_updated":"[^"]*"', b"", value)


@given(json_values, json_values)
def test_equal_digests_mean_equal_text_without_last_updated(first: Any, second: Any) -> None:
    a, b = orjson.dumps(first), orjson.dumps(second)
    if without_last_updated(a) == without_last_updated(b):
        assert content_digest(a) == content_digest(b)
    else:  # (a 64-bit collision would fail this: never seen)
        assert content_digest(a) != content_digest(b)


@given(json_values, stamps, stamps)
def test_only_last_updated_may_change_without_changing_the_digest(
    value: Any, before: str, after: str
) -> None:
    obj = {"id": "1", "last_updated": before, "nested": [{"last_updated": before, "v": value}]}
    changed = {"id": "1", "last_updated": after, "nested": [{"last_updated": after, "v": value}]}
    assert content_digest(orjson.dumps(obj)) == content_digest(orjson.dumps(changed))
    assert content_digest(orjson.dumps(obj)) != content_digest(orjson.dumps({**obj, "id": "2"}))


def test_a_digest_is_never_zero_and_its_record_says_its_kind() -> None:
    assert content_digest(b"") != 0
    assert read_digest_value(digest_value(12345)) == (12345, False)
    assert digest_value(0xABC) == b"x0000000000000abc"
    # Written before xxh3: 16 hex digits, no marker.
    assert read_digest_value(b"00000000000abcde") == (0xABCDE, True)


@given(json_values)
def test_the_legacy_digest_is_what_earlier_versions_stored(value: Any) -> None:
    written = orjson.dumps(value)
    old = int.from_bytes(
        hashlib.blake2b(without_last_updated(written), digest_size=8).digest(), "little"
    )
    assert legacy_content_digest(written) == (old or 1)
    # The partner's text, however it is written, stands for the same object.
    assert legacy_content_digest(orjson.dumps(value, option=orjson.OPT_INDENT_2)) == (old or 1)


@given(st.text(), st.text())
def test_key_hashes_are_stable_and_tell_keys_apart(first: str, second: str) -> None:
    assert key_hash(first) == key_hash(first)
    assert (key_hash(first) == key_hash(second)) == (first == second)
