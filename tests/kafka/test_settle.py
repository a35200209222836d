"""A transactional producer, once started, commits an empty transaction over every partition
its pull writes (`Transactor.settle`), on the real brokers: each partition gets a commit marker
and stays readable to its end by a read_committed consumer; one a killed predecessor left a
transaction open in is settled too (or, where the broker refuses that, the producer goes on
without it, as before).

The case the settle exists for, a transaction Kafka ended without writing its markers (its
partitions' only replica shutting down mid-commit), cannot be made on demand: the broker-restart
test in tests/e2e/test_exactly_once.py meets it now and then."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from producer.kafka.consume import started_consumer
from producer.kafka.output import KafkaOutput
from producer.kafka.transactions import Transactor
from tests.brokers import NOIDA
from tests.kafka.test_outbox import PARTITIONS, create_topic


async def ends(bootstrap: str, topic: str) -> tuple[list[int], list[int]]:
    """Each partition's high watermark and last stable offset."""
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    high: list[int] = []
    stable: list[int] = []
    for isolation_level, found in (("read_uncommitted", high), ("read_committed", stable)):
        consumer = await started_consumer(bootstrap, isolation_level=isolation_level)
        try:
            offsets = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        found.extend(offsets[tp] for tp in partitions)
    return high, stable


async def test_a_started_producer_commits_a_marker_to_every_partition_of_its_topics(
    bootstrap: str, prefix: str, broker_kind: str
) -> None:
    # noida-db writes a transaction's markers only where it wrote records: nothing to see there.
    marker = 0 if broker_kind == NOIDA else 1
    topic = f"{prefix}.tokens"
    await create_topic(bootstrap, topic)
    kafka = KafkaOutput(bootstrap, partitions=PARTITIONS, deadline_s=30.0)
    await kafka.start()
    transactor = Transactor(kafka, f"{prefix}.settle", topics=[topic])
    try:
        await transactor.start()
        high, stable = await ends(bootstrap, topic)
        assert high == [marker] * PARTITIONS  # a commit marker each, and nothing else
        assert stable == high
        await transactor.renew()  # each new producer settles again
        assert (await ends(bootstrap, topic))[1] == [2 * marker] * PARTITIONS
    finally:
        await transactor.stop()
        await kafka.stop()


async def test_a_transaction_a_killed_producer_left_open_is_ended(
    bootstrap: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"{prefix}.tokens"
    await create_topic(bootstrap, topic)
    tid = f"{prefix}.settle"
    killed = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
    await killed.start()
    await killed.begin_transaction()
    await (await killed.send(topic, b"value", key=b"key", partition=0))
    assert (await ends(bootstrap, topic))[1][0] == 0  # open: read_committed stops before it
    kafka = KafkaOutput(bootstrap, partitions=PARTITIONS, deadline_s=30.0)
    await kafka.start()
    transactor = Transactor(kafka, tid, topics=[topic])
    try:
        with caplog.at_level(logging.WARNING, logger="ocpi_puller"):
            await transactor.start()  # fences the killed one, whose transaction is aborted
        high, stable = await ends(bootstrap, topic)
        assert stable == high
        # Apache Kafka commits the settling transaction; noida-db refuses a marker without a
        # record where the last transaction was aborted, and the producer goes on without it.
        refused = [r for r in caplog.records if "going on without it" in r.getMessage()]
        assert high[1:] == [0 if refused else 1] * (PARTITIONS - 1)
    finally:
        await transactor.stop()
        await kafka.stop()
        await killed.stop()
