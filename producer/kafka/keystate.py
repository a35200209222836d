"""What was produced before, per partner module: the state behind --skip-unchanged and
--emit-tombstones.

On the compacted topic `<prefix>.digests` every produced object has a record keyed
`<partner>/<module>/<object key>` whose value is a 64-bit digest of its content without any
`last_updated` (`x` and 16 hex digits; 16 hex digits alone is a legacy digest, see digests.py);
a deleted object's record is a tombstone. All records of one partner module
share a partition (chosen from `<partner>/<module>`), so loading reads one partition.

In memory the state is sorted numpy arrays (key hash, digest, legacy or not): 17 bytes per key,
~170 MB for ten million keys, whatever the objects' size. A digest record is written only after
Kafka has acknowledged the object it describes, so a crash can make an unchanged object be
produced again, never make a changed one be skipped.
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from aiokafka import TopicPartition

from producer.kafka.committed import read_committed
from producer.kafka.consume import read_to_end, started_consumer
from producer.kafka.digests import digest_value, key_hash, read_digest_value
from producer.kafka.output import KafkaOutput
from producer.kafka.partitioning import partition_for
from producer.kafka.records import OutMessage


class KeyState:
    """The digests of one partner module, and the keys one pull has seen."""

    def __init__(
        self,
        kafka: KafkaOutput,
        topic: str,
        partner: str,
        module: str,
        *,
        committed_within_s: float | None = None,
    ) -> None:
        self._kafka = kafka
        # Exactly-once: digests travel in transactions, so only committed ones count (read to
        # the end within this many seconds, see committed.py).
        self._committed_within_s = committed_within_s
        self.topic = topic
        self._scope = f"{partner}/{module}"
        self._prefix = f"{self._scope}/".encode()
        self._keys = np.empty(0, dtype=np.uint64)
        self._digests = np.empty(0, dtype=np.uint64)
        self._legacy = np.empty(0, dtype=bool)
        self._seen = array("Q")

    @property
    def known(self) -> int:
        """How many keys were present after earlier pulls."""
        return len(self._keys)

    async def _partition(self) -> int:
        return partition_for(self._scope.encode(), await self._kafka.partition_count(self.topic))

    async def _records(self) -> AsyncIterator[tuple[bytes, bytes | None]]:
        """(object key, value) of every record of this partner module, in topic order."""
        async for record in self._read():
            if record.key and record.key.startswith(self._prefix):
                yield record.key[len(self._prefix) :], record.value

    async def _read(self) -> AsyncIterator[Any]:
        partition = await self._partition()
        if self._committed_within_s is not None:
            async for record in read_committed(
                self._kafka.connection,
                self.topic,
                partitions=[partition],
                deadline_s=self._committed_within_s,
            ):
                yield record
            return
        consumer = await started_consumer(self._kafka.connection)
        try:
            async for record in read_to_end(consumer, [TopicPartition(self.topic, partition)]):
                yield record
        finally:
            await consumer.stop()

    async def load(self) -> None:
        """Read the state left by earlier pulls (later records win; tombstones remove)."""
        keys = array("Q")
        digests = array("Q")
        legacy = array("B")
        async for key, value in self._records():
            keys.append(key_hash(key.decode()))
            digest, old = (0, False) if value is None else read_digest_value(value)
            digests.append(digest)
            legacy.append(old)
        if not keys:
            return
        all_keys = np.frombuffer(keys, dtype=np.uint64)[::-1]
        all_digests = np.frombuffer(digests, dtype=np.uint64)[::-1]
        all_legacy = np.frombuffer(legacy, dtype=np.uint8)[::-1].astype(bool)
        # Reversed, the first occurrence of a key is its latest record.
        unique, first = np.unique(all_keys, return_index=True)
        latest = all_digests[first]
        present = latest != 0
        self._keys = unique[present]
        self._digests = latest[present]
        self._legacy = all_legacy[first][present]

    def previous_digests(self, hashes: Sequence[int]) -> tuple[list[int], list[bool]]:
        """The digest each key had after earlier pulls (0: not present), and whether that digest
        is a legacy one (`digests.legacy_content_digest` compares with it)."""
        if not len(self._keys) or not hashes:
            return [0] * len(hashes), [False] * len(hashes)
        wanted = np.asarray(hashes, dtype=np.uint64)
        positions = np.searchsorted(self._keys, wanted)
        positions[positions >= len(self._keys)] = 0
        found = self._keys[positions] == wanted
        digests = np.where(found, self._digests[positions], 0)
        legacy = found & self._legacy[positions]
        return digests.tolist(), legacy.tolist()

    def mark_seen(self, hashes: Sequence[int]) -> None:
        """These keys exist at the partner (produced, skipped as unchanged, or dead-lettered)."""
        self._seen.extend(hashes)

    def absent(self, also_alive: Sequence[int] = ()) -> np.ndarray:
        """Key hashes present after earlier pulls that this pull did not see."""
        seen = np.frombuffer(self._seen, dtype=np.uint64) if self._seen else np.empty(0, np.uint64)
        alive = np.concatenate([seen, np.asarray(also_alive, dtype=np.uint64)])
        return np.setdiff1d(self._keys, alive, assume_unique=False)

    async def names_of(self, hashes: np.ndarray) -> list[str]:
        """The object keys behind some key hashes (a second read of the partition)."""
        wanted = {int(h) for h in hashes}
        names: dict[str, None] = {}
        async for key, _ in self._records():
            name = key.decode()
            if key_hash(name) in wanted:
                names[name] = None
        return list(names)

    def digest_record(self, object_key: str, digest: int) -> OutMessage:
        """The record saying `object_key` was produced with this content."""
        return OutMessage(
            f"{self._scope}/{object_key}".encode(),
            digest_value(digest),
            [],
            partition_key=self._scope.encode(),
        )

    def tombstone_record(self, object_key: str) -> OutMessage:
        """The record saying `object_key` is gone."""
        return OutMessage(
            f"{self._scope}/{object_key}".encode(), None, [], partition_key=self._scope.encode()
        )
