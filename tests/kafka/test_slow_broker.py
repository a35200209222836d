"""A slow broker, seen through a proxy that holds its answers back (tests/broker_proxy.py): an
acknowledgement slower than the request timeout is waited for, nothing is sent twice; a producer
the broker forgets anyway re-sends only the batch it had not acknowledged; silence past the
deadline is one clear failure."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from producer.errors import KafkaUnavailableError
from producer.kafka.output import KafkaOutput, KafkaWait
from producer.kafka.records import OutMessage, TopicSpec
from tests.broker_proxy import BrokerProxy
from tests.kafka.test_outbox import PARTITIONS, message, read


@pytest.fixture
async def proxy(bootstrap: str) -> AsyncIterator[BrokerProxy]:
    port = int(bootstrap.rsplit(":", 1)[1])
    running = BrokerProxy(port)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def output_through(proxy: BrokerProxy, topic: str, **options: object) -> KafkaOutput:
    kafka = KafkaOutput(proxy.bootstrap, partitions=PARTITIONS, **options)  # type: ignore[arg-type]
    await kafka.start()
    await kafka.ensure_topics([TopicSpec(topic, compacted=False)])
    return kafka


async def test_an_ack_slower_than_the_request_timeout_is_waited_for_and_never_resent(
    bootstrap: str, prefix: str, proxy: BrokerProxy
) -> None:
    topic = f"{prefix}.slow"
    waits: list[KafkaWait] = []
    kafka = await output_through(
        proxy, topic, request_timeout_ms=400, deadline_s=60.0, on_wait=waits.append
    )
    proxy.delay_s = 1.5  # every acknowledgement ~4 request timeouts late
    try:
        acks = [
            await kafka.send(topic, [message(f"k{n}-{i}") for i in range(50)]) for n in range(4)
        ]
        await kafka.wait_acked(acks)
    finally:
        await kafka.stop()
    keys = Counter(r.key for r in await read(bootstrap, topic))
    assert len(keys) == 200
    assert set(keys.values()) == {1}  # waited for, not sent again
    assert waits  # the slow broker was reported
    assert all(w.topic == "produce" and "slow broker" in w.reason for w in waits)


async def test_a_lost_identity_resends_only_the_batch_not_acknowledged(
    bootstrap: str, prefix: str, proxy: BrokerProxy
) -> None:
    topic = f"{prefix}.forgotten"
    kafka = await output_through(proxy, topic, deadline_s=60.0)
    sent = [message(f"NL/SBX/{i:04d}") for i in range(300)]
    try:
        # Every partition's leader known and writable first: a new topic's first answer may
        # refuse a partition for real (NotLeaderForPartition on Apache Kafka), and the error
        # below must replace an answer for a batch the broker did take.
        warm = [message(f"warm/{i:04d}") for i in range(10 * PARTITIONS)]
        await kafka.wait_acked([await kafka.send(topic, warm)])
        # The broker takes the first batch of the next answer, and says it did not.
        proxy.produce_errors.append(OutOfOrderSequenceNumber.errno)
        await kafka.wait_acked([await kafka.send(topic, sent)])
        generation = kafka.producers.current()[1]
    finally:
        await kafka.stop()
    records = [r for r in await read(bootstrap, topic) if not r.key.startswith(b"warm/")]
    counts = Counter(r.key for r in records)
    assert set(counts) == {m.key for m in sent}  # nothing lost
    twice = {key for key, n in counts.items() if n > 1}
    assert twice, "the refused batch was not produced again"
    assert set(counts.values()) == {1, 2}
    # Only the refused batch came twice: one partition's, while the others' stayed single.
    assert len({r.partition for r in records if r.key in twice}) == 1
    assert len(twice) < len(sent) / 2
    assert generation == 1  # a new producer


async def test_a_broker_silent_past_the_deadline_is_one_clear_failure(
    prefix: str, proxy: BrokerProxy
) -> None:
    topic = f"{prefix}.silent"
    kafka = await output_through(proxy, topic, request_timeout_ms=500, deadline_s=2.0)
    try:
        await kafka.partition_count(topic)  # metadata first: then the broker falls silent
        proxy.stall(60)
        ack = await kafka.send(topic, [OutMessage(b"k", b"v", [])])
        with pytest.raises(KafkaUnavailableError, match="acknowledged nothing for"):
            await asyncio.wait_for(kafka.wait_acked([ack]), 20)
    finally:
        proxy.stall(0)
        await kafka.stop()
