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
    result = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(index)
    m = np.uint32(_M)
    for length, indices in by_length.items():
        rows = np.frombuffer(b"".join([keys[i] for i in indices]), dtype=np.uint8)
        rows = rows.reshape(len(indices), length)
        h = np.full(len(indices), (0x9747B28C ^ length) & _MASK, dtype=np.uint32)
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
        result[indices] = h
    return [int(v) for v in result]


def partitions_for(keys: Sequence[bytes], partitions: int) -> list[int]:
    """`partition_for` of every key."""
    return [(h & 0x7FFFFFFF) % partitions for h in murmur2_many(keys)]
