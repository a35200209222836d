"""Kafka's default partitioning: murmur2 of the key, positive, modulo the partition count.

We hand aiokafka whole batches, so we choose partitions ourselves, exactly as Kafka's (and
aiokafka's) default partitioner would: one key always lands on one partition, whoever produced it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), as `org.apache.kafka.common.utils.Utils.murmur2`."""
    length = len(data)
    h = 0x9747B28C ^ length
    tail = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:tail]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The default partitioner's choice: `toPositive(murmur2(key)) % partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """murmur2 of many keys at once: keys of one length are hashed as numpy columns.

    Same result as `murmur2` per key (tested), ~20x faster for a page of keys.
    """
    hashes: list[int] = _murmur2_array(keys).tolist()
    return hashes


def partitions_for(keys: Sequence[bytes], partitions: int) -> list[int]:
    """`partition_for` of every key."""
    hashes = _murmur2_array(keys)
    chosen: list[int] = ((hashes & np.uint32(0x7FFFFFFF)) % np.uint32(partitions)).tolist()
    return chosen


def _murmur2_array(keys: Sequence[bytes]) -> np.ndarray:
    result = np.empty(len(keys), dtype=np.uint32)
    if not keys:
        return result
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    if (lengths == lengths[0]).all():  # a page of keys of one shape: one group, no sorting
        groups = [(int(lengths[0]), np.arange(len(keys)))]
    else:
        order = np.argsort(lengths, kind="stable")
        cuts = np.flatnonzero(np.diff(lengths[order])) + 1
        groups = [(int(lengths[g[0]]), g) for g in np.split(order, cuts)]
    for length, indices in groups:
        chosen = keys if len(indices) == len(keys) else [keys[i] for i in indices.tolist()]
        result[indices] = _murmur2_rows(b"".join(chosen), len(indices), length)
    return result


def _murmur2_rows(data: bytes, count: int, length: int) -> np.ndarray:
    """murmur2 of `count` keys of `length` bytes each, laid end to end in `data`."""
    m = np.uint32(_M)
    rows = np.frombuffer(data, dtype=np.uint8).reshape(count, length)
    h = np.full(count, (0x9747B28C ^ length) & _MASK, dtype=np.uint32)
    tail = length & ~3
    if tail:
        words = np.ascontiguousarray(rows[:, :tail]).view("<u4")
        for column in range(tail // 4):
            k = words[:, column] * m
            k ^= k >> np.uint32(24)
            k *= m
            h *= m
            h ^= k
    extra = length & 3
    if extra >= 3:
        h ^= rows[:, tail + 2].astype(np.uint32) << np.uint32(16)
    if extra >= 2:
        h ^= rows[:, tail + 1].astype(np.uint32) << np.uint32(8)
    if extra >= 1:
        h ^= rows[:, tail].astype(np.uint32)
        h *= m
    h ^= h >> np.uint32(13)
    h *= m
    h ^= h >> np.uint32(15)
    return h
