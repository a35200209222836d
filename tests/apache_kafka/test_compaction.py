"""Compaction for real: with `--emit-tombstones` and a compacted object topic that Apache Kafka's
log cleaner works on (small segments, cleanable at once), a consumer reading after the cleaner
ran sees each live object once, with its latest value, and no deleted object at all."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from sandbox.apache_kafka.broker import ApacheKafka
from sandbox.kafka_reader import Record
from tests.brokers import only_broker
from tests.kafka_read import records
from tests.support import just_after, pull, sandbox, truth_keys

pytestmark = only_broker("apache", reason="noida-db does no compaction")

SENTINEL = b"~sentinel"  # written to roll segments: the active segment is never cleaned


def compacted_topic(broker: ApacheKafka, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    config = {
        "cleanup.policy": "compact",
        "segment.ms": "100",
        "min.cleanable.dirty.ratio": "0.001",
        "min.compaction.lag.ms": "0",
        "delete.retention.ms": "100",
    }
    for created in admin.create_topics([NewTopic(topic, partitions, 1, config=config)]).values():
        created.result()


def roll_segments(broker: ApacheKafka, topic: str, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for partition in range(partitions):
        producer.produce(topic, key=SENTINEL, value=b"roll", partition=partition)
    producer.flush(10)


def latest(found: list[Record]) -> tuple[Counter[bytes], set[bytes]]:
    """How often each key appears, and the keys whose last record is a tombstone."""
    counts = Counter(r.key for r in found if r.key and r.key != SENTINEL)
    last: dict[bytes, bytes | None] = {}
    for record in found:
        if record.key and record.key != SENTINEL:
            last[record.key] = record.value
    return counts, {key for key, value in last.items() if value is None}


async def test_after_the_cleaner_each_live_key_is_there_once_and_no_deleted_key(
    broker: ApacheKafka, prefix: str
) -> None:
    topic, partitions = f"{prefix}.tokens", 3
    compacted_topic(broker, topic, partitions)
    async with sandbox(sizes={"tokens": 1000}, max_limit=200) as (base, state):
        first = await pull(base, broker.bootstrap, prefix, pull_id="c1", emit_tombstones=True)
        assert first.exit_code == 0, first.summaries[0]
        dataset = state.datasets["tokens"]
        now = int(time.time() * 1000)
        for index in range(0, 100, 2):
            dataset.update(index, now)
        deleted = [dataset.delete(index, now) for index in range(500, 520)]
        second = await pull(
            base, broker.bootstrap, prefix, pull_id="c2", emit_tombstones=True,
            date_to=just_after(now),  # the changes lie before the second pull's date_to
        )  # fmt: skip
        assert second.exit_code == 0, second.summaries[0]
        live = set(truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000))
    assert second.summaries[0].tombstones == len(deleted) == 20
    counts, _ = latest(await records(broker.bootstrap, topic))
    assert sum(counts.values()) > len(live)  # before cleaning: updates and tombstones pile up

    # Roll the segments again and again until the cleaner has removed every duplicate and,
    # delete.retention.ms later, every tombstone (two cleaning passes).
    give_up = time.monotonic() + 90
    while True:
        roll_segments(broker, topic, partitions)
        found = await records(broker.bootstrap, topic)
        counts, tombstoned = latest(found)
        if set(counts) == {k.encode() for k in live} and max(counts.values()) == 1:
            break
        assert time.monotonic() < give_up, (
            f"not compacted: {sum(counts.values())} records, {len(tombstoned)} tombstones, "
            f"{len(set(counts) - {k.encode() for k in live})} keys not live"
        )
        await asyncio.sleep(1.0)
    assert not tombstoned
    assert all(r.value for r in found if r.key != SENTINEL)
