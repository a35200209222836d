"""Resume state on the checkpoints topic (`producer.kafka.checkpoints.CheckpointStore`), against
the embedded broker: what a pull writes comes back through `load`, and only its own records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import UnknownProducerId

from producer.errors import ConfigError
from producer.kafka.checkpoints import CheckpointStore, StoredState, find_pull
from producer.kafka.output import KafkaOutput
from producer.kafka.partitioning import partition_for
from producer.kafka.records import OutMessage, TopicSpec
from schemas.records import PullPlan, SyncState, WindowCheckpoint, WindowSpec
from tests.kafka_read import records

PARTITIONS = 3
PINNED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def plan(
    pull_id: str, *, partner: str = "sbx", module: str = "tokens", **changes: object
) -> PullPlan:
    windows = [
        WindowSpec(index=0, date_from=None, date_to=PINNED - DAY, expected=900),
        WindowSpec(index=1, date_from=PINNED - DAY, date_to=PINNED, expected=120),
    ]
    return PullPlan(
        pull_id=pull_id,
        partner=partner,
        module=module,
        ocpi_version="2.2.1",
        kind="full",
        date_from=None,
        date_to=PINNED,
        windows=windows,
        created_at=PINNED,
        **changes,  # type: ignore[arg-type]
    )


def window(
    pull_id: str,
    index: int,
    next_offset: int,
    *,
    partner: str = "sbx",
    module: str = "tokens",
    done: bool = False,
) -> WindowCheckpoint:
    return WindowCheckpoint(
        pull_id=pull_id,
        partner=partner,
        module=module,
        window=index,
        date_from=None if index == 0 else PINNED - DAY,
        date_to=PINNED - DAY if index == 0 else PINNED,
        pinned_date_to=PINNED,
        next_offset=next_offset,
        total_at_offset=900,
        done=done,
        complete=done,
        objects_emitted=next_offset,
        updated_at=PINNED + timedelta(seconds=next_offset),
    )


def sync(pull_id: str, *, partner: str = "sbx", module: str = "tokens") -> SyncState:
    return SyncState(
        partner=partner,
        module=module,
        pull_id=pull_id,
        kind="full",
        date_to=PINNED,
        completed_at=PINNED + timedelta(minutes=5),
    )


@pytest.fixture
async def kafka(bootstrap: str) -> AsyncIterator[KafkaOutput]:
    output = KafkaOutput(bootstrap, partitions=PARTITIONS, deadline_s=30.0)
    await output.start()
    try:
        yield output
    finally:
        await output.stop()


@pytest.fixture
async def topic(prefix: str, kafka: KafkaOutput) -> str:
    name = f"{prefix}.checkpoints"
    await kafka.ensure_topics([TopicSpec(name, compacted=True)])
    return name


@pytest.fixture
def store(kafka: KafkaOutput, topic: str) -> CheckpointStore:
    return CheckpointStore(kafka, topic, "sbx", "tokens")


def neighbour_on_the_same_partition(module: str = "tokens") -> str:
    """Another partner whose checkpoints share sbx/tokens' partition (so `load` must filter)."""
    ours = partition_for(b"sbx/tokens", PARTITIONS)
    return next(
        name
        for name in (f"partner{i}" for i in range(100))
        if partition_for(f"{name}/{module}".encode(), PARTITIONS) == ours
    )


async def test_plan_windows_and_sync_come_back_through_load(store: CheckpointStore) -> None:
    await store.save_plan(plan("pull-1"))
    await store.save_window(window("pull-1", 0, 300))
    await store.save_window(window("pull-1", 1, 120, done=True))
    await store.save_sync(sync("pull-0"))
    await store.flush()
    state = await store.load("pull-1")
    assert state == StoredState(
        plan("pull-1"),
        {0: window("pull-1", 0, 300), 1: window("pull-1", 1, 120, done=True)},
        sync("pull-0"),
    )


async def test_the_latest_record_of_each_key_wins(store: CheckpointStore) -> None:
    await store.save_plan(plan("pull-1"))
    for offset in (100, 200, 300):
        await store.save_window(window("pull-1", 0, offset))
    await store.save_window(window("pull-1", 1, 120, done=True))
    await store.save_sync(sync("pull-0"))
    await store.save_plan(plan("pull-1", completed=True))
    await store.save_sync(sync("pull-1"))
    await store.flush()
    state = await store.load("pull-1")
    assert state.plan == plan("pull-1", completed=True)
    assert state.windows == {0: window("pull-1", 0, 300), 1: window("pull-1", 1, 120, done=True)}
    assert state.sync == sync("pull-1")


async def test_another_pull_ids_records_are_ignored(store: CheckpointStore) -> None:
    # "pull-10" starts with "pull-1": keys must match exactly, not by prefix.
    for pull_id in ("pull-1", "pull-10", "pull-2"):
        await store.save_plan(plan(pull_id))
        await store.save_window(window(pull_id, 0, 100 + len(pull_id)))
    await store.save_sync(sync("pull-2"))
    await store.flush()
    state = await store.load("pull-1")
    assert state.plan == plan("pull-1")
    assert state.windows == {0: window("pull-1", 0, 106)}
    assert state.sync == sync("pull-2")  # the module's sync state belongs to no single pull
    # Without a pull id only the sync state is read.
    assert await store.load(None) == StoredState(sync=sync("pull-2"))
    assert await store.load("pull-3") == StoredState(sync=sync("pull-2"))


async def test_another_partner_modules_records_are_ignored(
    kafka: KafkaOutput, topic: str, store: CheckpointStore
) -> None:
    neighbour = neighbour_on_the_same_partition()
    others = []
    for partner, module in [(neighbour, "tokens"), ("sbx", "locations")]:
        other = CheckpointStore(kafka, topic, partner, module)
        await other.save_plan(plan("pull-1", partner=partner, module=module))
        await other.save_window(window("pull-1", 0, 999, partner=partner, module=module))
        await other.save_sync(sync("pull-1", partner=partner, module=module))
        await other.flush()
        others.append(other)
    assert await store.load("pull-1") == StoredState()
    await store.save_window(window("pull-1", 1, 5))
    await store.flush()
    assert await store.load("pull-1") == StoredState(windows={1: window("pull-1", 1, 5)})
    assert (await others[0].load("pull-1")).windows == {
        0: window("pull-1", 0, 999, partner=neighbour)
    }


async def test_an_unreadable_record_is_skipped_with_a_warning(
    kafka: KafkaOutput, topic: str, store: CheckpointStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.save_window(window("pull-1", 0, 300))
    await store.flush()
    scope = b"sbx/tokens"
    bad = [
        (store.plan_key("pull-1"), b"{}"),  # JSON, but no checkpoint record
        (store.window_key("pull-1", 1), b"not json at all"),
        (store.window_key("pull-1", 2), b'{"record": "window", "window": 2}'),  # fields missing
    ]
    await kafka.send_and_wait(
        topic,
        [OutMessage(key.encode(), value, [], scope) for key, value in bad]
        # A tombstone (compaction's delete marker) is skipped without a word.
        + [OutMessage(store.window_key("pull-1", 3).encode(), None, [], scope)],
    )
    with caplog.at_level(logging.WARNING, logger="ocpi_puller"):
        state = await store.load("pull-1")
    assert state == StoredState(windows={0: window("pull-1", 0, 300)})
    # The puller's own warnings (aiokafka's, e.g. a fresh topic's leader not known yet, aside).
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "ocpi_puller"
    ]
    assert warnings == [
        f"ignoring an unreadable checkpoint record under {k.encode()!r}" for k, _ in bad
    ]


async def test_flush_waits_until_every_queued_record_is_acknowledged(
    bootstrap: str, topic: str, store: CheckpointStore
) -> None:
    for index in range(25):
        await store.save_window(window("pull-1", index, index))  # queued, not waited for
    await store.flush()
    # Acknowledged means on the broker: a plain read sees every one.
    keys = [r.key for r in await records(bootstrap, topic)]
    assert sorted(keys) == sorted(store.window_key("pull-1", i).encode() for i in range(25))


async def test_flush_writes_every_latest_record_again_when_one_was_lost(
    bootstrap: str, kafka: KafkaOutput, topic: str, store: CheckpointStore
) -> None:
    await store.save_window(window("pull-1", 1, 120, done=True))
    await store.flush()
    await store.save_window(window("pull-1", 0, 300))
    # Before the record reaches the broker, its batch fails as it does when the producer is
    # replaced (KafkaOutput renews a producer the broker no longer knows this way).
    for outbox in kafka._outboxes.values():
        outbox.fail_pending(UnknownProducerId())
    await store.flush()
    keys = [r.key for r in await records(bootstrap, topic)]
    # Window 0 written once (the rewrite), window 1 twice (first write, then the rewrite).
    assert sorted(keys) == sorted(
        [store.window_key("pull-1", 0).encode()] + [store.window_key("pull-1", 1).encode()] * 2
    )
    assert (await store.load("pull-1")).windows == {
        0: window("pull-1", 0, 300),
        1: window("pull-1", 1, 120, done=True),
    }


class WatchedStore(CheckpointStore):
    """A CheckpointStore that says when a load has finished (to act while another waits)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.loads = 0
        self.loaded = asyncio.Event()

    async def load(self, pull_id: str | None) -> StoredState:
        state = await super().load(pull_id)
        self.loads += 1
        self.loaded.set()
        return state


async def test_wait_for_plan_returns_a_plan_that_appears_while_waiting(
    kafka: KafkaOutput, topic: str
) -> None:
    shard_1 = WatchedStore(kafka, topic, "sbx", "tokens")
    shard_0 = CheckpointStore(kafka, topic, "sbx", "tokens")
    waiting = asyncio.create_task(shard_1.wait_for_plan("pull-1", timeout_s=60))
    await shard_1.loaded.wait()
    assert not waiting.done()  # found no plan, still waiting
    await shard_0.save_plan(plan("pull-1"))
    state = await waiting
    assert state.plan == plan("pull-1")
    assert shard_1.loads >= 2


async def test_wait_for_plan_gives_up_with_one_clear_line(store: CheckpointStore) -> None:
    await store.save_plan(plan("pull-other"))
    with pytest.raises(ConfigError) as raised:
        await store.wait_for_plan("pull-1", timeout_s=0.1)
    message = str(raised.value)
    assert "\n" not in message
    assert "no plan for pull pull-1" in message
    assert "--pull-id" in message


# -- reset (`ocpi-puller reset`) and the read-only look-up by pull id ----------------------------


async def test_a_reset_pull_loads_as_new(
    bootstrap: str, topic: str, store: CheckpointStore
) -> None:
    await store.save_plan(plan("pull-1", completed=True))
    await store.save_window(window("pull-1", 0, 900, done=True))
    await store.save_window(window("pull-1", 1, 120, done=True))
    await store.save_sync(sync("pull-1"))
    await store.flush()
    before = await store.load("pull-1")
    reset = await store.reset("pull-1", before)
    assert (reset.windows_cleared, reset.plan_completed, reset.plan_date_to) == (2, True, PINNED)
    after = await store.load("pull-1")
    # No plan, no windows: the next pull with this id plans afresh. The sync state stays.
    assert after == StoredState(sync=sync("pull-1"), reset=reset, reset_at=reset.reset_at)
    # On the topic: a tombstone per window key, then the reset under the plan's key.
    found = await records(bootstrap, topic)
    written = [((r.key or b"").decode(), r.value) for r in found][-3:]
    assert [k for k, _ in written] == [
        store.window_key("pull-1", 0),
        store.window_key("pull-1", 1),
        store.plan_key("pull-1"),
    ]
    assert [v is None for _, v in written] == [True, True, False]


async def test_after_a_reset_only_the_new_plans_windows_count(store: CheckpointStore) -> None:
    await store.save_plan(plan("pull-1"))
    await store.save_window(window("pull-1", 0, 300))
    await store.flush()
    await store.reset("pull-1", await store.load("pull-1"))
    new_plan = plan("pull-1").model_copy(update={"date_to": PINNED + DAY})
    await store.save_plan(new_plan)
    fresh = window("pull-1", 1, 50).model_copy(update={"pinned_date_to": PINNED + DAY})
    await store.save_window(fresh)
    # A run of the voided plan that outlived the reset writes once more: not the new plan's.
    await store.save_window(window("pull-1", 0, 600))
    await store.flush()
    state = await store.load("pull-1")
    assert state.plan == new_plan
    assert state.reset is None
    assert state.windows == {1: fresh}


async def test_find_pull_reads_every_partner_module_of_one_pull_id(
    kafka: KafkaOutput, topic: str
) -> None:
    for partner, module, pull_id in [
        ("sbx", "tokens", "pull-1"),
        ("sbx", "locations", "pull-1"),
        ("acme", "tokens", "pull-1"),
        ("sbx", "tokens", "pull-10"),  # another id that starts with the same characters
    ]:
        store = CheckpointStore(kafka, topic, partner, module)
        await store.save_plan(plan(pull_id, partner=partner, module=module))
        await store.save_window(window(pull_id, 0, 7, partner=partner, module=module))
        await store.flush()
    acme = CheckpointStore(kafka, topic, "acme", "tokens")
    reset = await acme.reset("pull-1", await acme.load("pull-1"))
    found = await find_pull(kafka.connection, topic, "pull-1")
    assert [(f.partner, f.module) for f in found] == [
        ("acme", "tokens"),
        ("sbx", "locations"),
        ("sbx", "tokens"),
    ]
    assert found[0].state == StoredState(reset=reset, reset_at=reset.reset_at)
    assert found[2].state == StoredState(plan("pull-1"), {0: window("pull-1", 0, 7)})
    assert await find_pull(kafka.connection, topic, "pull-2") == []
