"""Our partition choice is Kafka's default partitioner's, byte for byte.

`producer.kafka.partitioning` picks partitions itself (whole batches go to aiokafka's batch API),
so a key must land where aiokafka's `DefaultPartitioner`, and the Java client's, would put it:
otherwise one object's versions would spread over partitions and compaction would keep stale ones.
"""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from producer.kafka.partitioning import murmur2, murmur2_many, partition_for, partitions_for

# Keys of every length class (murmur2 mixes 4-byte words, then a 0-3 byte tail), non-ASCII text
# (keys are UTF-8 of OCPI ids), and keys as the puller builds them.
byte_keys = st.binary(max_size=96) | st.text(max_size=40).map(str.encode)
partition_counts = st.integers(min_value=1, max_value=10_000)


def default_partition(key: bytes, partitions: int) -> int:
    every = list(range(partitions))
    return DefaultPartitioner()(key, every, every)


@given(key=byte_keys)
def test_murmur2_is_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(keys=st.lists(byte_keys, max_size=50))
def test_murmur2_many_is_murmur2_of_each_key(keys: list[bytes]) -> None:
    # Keys of one length are hashed together as numpy columns: mixed lengths, repeats, empty keys.
    assert murmur2_many(keys) == [aiokafka_murmur2(k) for k in keys]


@given(key=byte_keys, partitions=partition_counts)
def test_partition_for_is_the_default_partitioners(key: bytes, partitions: int) -> None:
    assert partition_for(key, partitions) == default_partition(key, partitions)


@given(keys=st.lists(byte_keys, max_size=50), partitions=partition_counts)
def test_partitions_for_is_the_default_partitioners(keys: list[bytes], partitions: int) -> None:
    assert partitions_for(keys, partitions) == [default_partition(k, partitions) for k in keys]


@pytest.mark.parametrize("length", range(70))
def test_every_key_length_hashes_as_aiokafka_does(length: int) -> None:
    # Deterministic coverage of each tail length and word count, with high bytes set (signed in
    # Java), whatever hypothesis happens to draw.
    keys = [bytes((i * 37 + seed) % 256 for i in range(length)) for seed in (0, 128, 255)]
    expected = [aiokafka_murmur2(k) for k in keys]
    assert [murmur2(k) for k in keys] == expected
    assert murmur2_many(keys) == expected
    assert partitions_for(keys, 7) == [default_partition(k, 7) for k in keys]


def test_nothing_to_hash() -> None:
    assert murmur2_many([]) == []
    assert partitions_for([], 3) == []


# Apache Kafka's own vectors for `Utils.murmur2`: UtilsTest.testMurmur2 in
# clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (apache/kafka at commit
# f55581dc73953c3509a4702433aeeeddc2970779). Java returns a signed int; ours is unsigned.
KAFKA_UTILS_TEST_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "java_int"), KAFKA_UTILS_TEST_VECTORS)
def test_the_java_clients_murmur2_vectors(key: bytes, java_int: int) -> None:
    assert murmur2(key) == java_int & 0xFFFFFFFF
    assert murmur2_many([key]) == [java_int & 0xFFFFFFFF]
    # The Java partitioner: Utils.toPositive(murmur2(key)) % numPartitions.
    for partitions in (1, 3, 6, 100):
        assert partition_for(key, partitions) == (java_int & 0x7FFFFFFF) % partitions
