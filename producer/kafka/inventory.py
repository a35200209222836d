"""What a pull left in Kafka: its object messages, distinct keys, duplicates and dead letters.

Every object and dead-letter message carries the `pull-id`, `partner` and `ocpi-module` headers,
so one read of `<prefix>.<module>` and of `<prefix>.deadletter` finds a pull's messages among
every other pull's. The object topics are compacted: a key this pull wrote may since have been
replaced by a later pull's message (and this pull's removed), so keys written after the pull's
plan by other pulls are collected too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from producer.kafka.committed import read_committed
from producer.kafka.connection import KafkaConnection
from producer.kafka.consume import read_topic
from producer.kafka.digests import dead_content_hash, key_hash, value_hash
from schemas import headers as h

Scope = tuple[str, str]  # (partner, module)


@dataclass(slots=True)
class PullInventory:
    """One partner module's messages of one pull."""

    messages: int = 0  # object messages with the pull's id (tombstones not counted)
    keys: set[str] = field(default_factory=set)
    tombstones: int = 0
    later_keys: set[str] = field(default_factory=set)  # written after the plan by other pulls
    dead_letters: int = 0
    dead_keys: set[str] = field(default_factory=set)  # dead letters' object keys, where known

    @property
    def duplicates(self) -> int:
        """Messages beyond one per key (still on the topic: compaction may have removed some)."""
        return self.messages - len(self.keys)


def _headers(record: Any) -> dict[str, bytes]:
    return dict(record.headers or ())


async def take_inventory(
    connection: KafkaConnection,
    prefix: str,
    pull_id: str,
    scopes: Iterable[tuple[Scope, int]],
) -> dict[Scope, PullInventory]:
    """The inventory of every `(partner, module)` of `pull_id`; each scope comes with the instant
    (epoch ms) its plan was made. Reads each module's topic once, and the dead letters once."""
    since = dict(scopes)
    found: dict[Scope, PullInventory] = {scope: PullInventory() for scope in since}
    ours = pull_id.encode()
    for module in sorted({module for _, module in since}):
        async for record in read_topic(connection, f"{prefix}.{module}"):
            headers = _headers(record)
            scope = (headers.get(h.PARTNER, b"").decode(), module)
            inventory = found.get(scope)
            if inventory is None or record.key is None:
                continue
            key = record.key.decode()
            if headers.get(h.PULL_ID) == ours:
                if record.timestamp < since[scope]:
                    continue  # an earlier run of the same id, reset since
                if record.value is None:
                    inventory.tombstones += 1
                else:
                    inventory.messages += 1
                    inventory.keys.add(key)
            elif record.value is not None and record.timestamp >= since[scope]:
                inventory.later_keys.add(key)
    async for record in read_topic(connection, f"{prefix}.deadletter"):
        headers = _headers(record)
        if headers.get(h.PULL_ID) != ours:
            continue
        scope = (headers.get(h.PARTNER, b"").decode(), headers.get(h.OCPI_MODULE, b"").decode())
        inventory = found.get(scope)
        if inventory is None or record.timestamp < since[scope]:
            continue
        inventory.dead_letters += 1
        try:
            key = orjson.loads(record.value or b"{}").get("key")
        except orjson.JSONDecodeError:
            key = None
        if isinstance(key, str):
            inventory.dead_keys.add(key)
    return found


@dataclass(slots=True)
class WrittenBefore:
    """What one pull of one partner module already has in Kafka (read back when it resumes):
    key_hash -> value_hash of the latest of its objects, and `dead_content_hash` of its dead
    letters. A resumed pull does not produce these again, and counts them as its own."""

    objects: dict[int, int] = field(default_factory=dict)
    dead_letters: set[int] = field(default_factory=set)
    # The distinct keys of each date window (by the `pull-window` header).
    window_keys: dict[int, set[int]] = field(default_factory=dict)


async def written_before(
    connection: KafkaConnection,
    objects_topic: str,
    deadletter_topic: str,
    *,
    pull_id: str,
    partner: str,
    since_ms: int,
    committed_deadline_s: float | None = None,
) -> WrittenBefore:
    """Every object and dead letter `pull_id` wrote for `partner` since `since_ms` (its plan was
    made then; a reset pull's earlier run wrote before it). With `committed_deadline_s`, only
    committed records count (exactly-once), read to the end within that deadline."""
    found = WrittenBefore()
    ours, whose = pull_id.encode(), partner.encode()

    def records(topic: str) -> AsyncIterator[Any]:
        if committed_deadline_s is None:
            return read_topic(connection, topic, from_timestamp_ms=since_ms)
        return read_committed(
            connection, topic, from_timestamp_ms=since_ms, deadline_s=committed_deadline_s
        )

    async for record in records(objects_topic):
        headers = _headers(record)
        if record.value is None or headers.get(h.PULL_ID) != ours or record.key is None:
            continue
        if headers.get(h.PARTNER) == whose:
            hashed = key_hash(record.key.decode())
            found.objects[hashed] = value_hash(record.value)
            window = headers.get(h.PULL_WINDOW, b"")
            if window.isdigit():
                found.window_keys.setdefault(int(window), set()).add(hashed)
    async for record in records(deadletter_topic):
        headers = _headers(record)
        if headers.get(h.PULL_ID) != ours or headers.get(h.PARTNER) != whose:
            continue
        try:
            letter = orjson.loads(record.value or b"{}")
        except orjson.JSONDecodeError:
            continue
        raw = orjson.dumps(letter.get("object"))
        identity = letter.get("key") or raw.decode("utf-8", "replace")
        found.dead_letters.add(dead_content_hash(identity, raw))
    return found
