"""Exactly-once delivery over the real broker and real processes: `ocpi-puller pull --delivery
exactly-once` SIGKILLed at several points (before its first commit, between units, mid-unit, with
a transaction open), then run again; a second process with the same pull id and shard fences the
first; the broker restarts mid-pull. A read_committed consumer must then see every key of the
sandbox's snapshot exactly once for that pull, and none missing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from producer.kafka.consume import read_topic, started_consumer, topic_partitions
from sandbox.app import SandboxState
from sandbox.kafka_reader import Isolation
from tests.brokers import RunningBroker
from tests.support import TOKEN, just_after, pull, records, sandbox, truth_keys

pytestmark = pytest.mark.slow

SIZE, PAGE = 40_000, 500


async def committed_keys(bootstrap: str, topic: str, pull_id: str) -> Counter[str]:
    """How often a read_committed consumer sees each key of `pull_id`."""
    seen: Counter[str] = Counter()
    for record in await records(bootstrap, topic):
        if dict(record.headers).get("pull-id") == pull_id.encode():
            seen[(record.key or b"").decode()] += 1
    return seen


async def count(bootstrap: str, topic: str, isolation: Isolation = "read_committed") -> int:
    return len(await records(bootstrap, topic, isolation))


async def committed_window_records(bootstrap: str, prefix: str) -> int:
    # A probe polled while a puller runs (so the fast in-process reader); what is asserted
    # about the topics is read by the second client.
    found = read_topic(bootstrap, f"{prefix}.checkpoints", isolation_level="read_committed")
    return len([r async for r in found if b"/window/" in r.key])


class OpenTransactions:
    """Watches a topic for a transaction not yet committed or aborted: some partition's last
    stable offset (what read_committed consumers reach) below its high watermark."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap, self._topic = bootstrap, topic
        self._consumers: dict[str, AIOKafkaConsumer] = {}

    async def __aenter__(self) -> OpenTransactions:
        for isolation_level in ("read_uncommitted", "read_committed"):
            consumer = await started_consumer(self._bootstrap, isolation_level=isolation_level)
            self._consumers[isolation_level] = consumer
        return self

    async def __aexit__(self, *_: object) -> None:
        for consumer in self._consumers.values():
            await consumer.stop()

    async def seen(self) -> bool:
        """Whether a transaction is open right now."""
        consumers = self._consumers
        partitions = await topic_partitions(consumers["read_uncommitted"], self._topic)
        if not partitions:
            return False
        high = await consumers["read_uncommitted"].end_offsets(partitions)
        stable = await consumers["read_committed"].end_offsets(partitions)
        return any(stable[tp] < high[tp] for tp in partitions)


async def frozen_in_an_open_transaction(
    bootstrap: str, topic: str, process: asyncio.subprocess.Process
) -> bool:
    """SIGSTOP the puller while records of a transaction it has not committed are in `topic`
    (True), or see it end first (False). A transaction is open for milliseconds: freeze the
    puller once one is seen, and keep it frozen only if records of an open one are there then
    (a commit marker not yet under the stable offset looks open too); else go on, look again."""
    async with OpenTransactions(bootstrap, topic) as transactions:
        while process.returncode is None:
            if not await transactions.seen():
                continue
            process.send_signal(signal.SIGSTOP)
            if await count(bootstrap, topic, "read_uncommitted") > await count(bootstrap, topic):
                return True
            process.send_signal(signal.SIGCONT)
    return False


def pull_args(base: str, bootstrap: str, prefix: str, pull_id: str, *extra: str) -> list[str]:
    return [
        "--url", f"{base}/ocpi/versions", "--module", "tokens",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--topic-partitions", "3",
        "--pull-id", pull_id, "--partner", "sbx", "--delivery", "exactly-once",
        "--concurrency", "2", "--fanout", "2", "--window-size", "10000",
        "--output", "json", "--log-level", "WARNING", *extra,
    ]  # fmt: skip


async def start_puller(args: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "producer.cli",
        "pull",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OCPI_PULLER_TOKEN": TOKEN},
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, dict[str, object], str]:
    out, err = await process.communicate()
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    summary = orjson.loads(lines[-1]) if lines else {}
    return process.returncode or 0, summary, err.decode()


async def until(
    condition: object, process: asyncio.subprocess.Process, pause_s: float = 0.01
) -> None:
    """Poll `condition()` (an async callable) until it holds; the puller must still run."""
    while not await condition():  # type: ignore[operator]
        assert process.returncode is None, (await process.communicate())[1].decode()[-2000:]
        await asyncio.sleep(pause_s)


def snapshot(state: SandboxState) -> set[str]:
    return set(truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000))


async def assert_each_key_once(
    bootstrap: str, prefix: str, pull_id: str, expected: set[str]
) -> None:
    seen = await committed_keys(bootstrap, f"{prefix}.tokens", pull_id)
    twice = sorted(k for k, n in seen.items() if n > 1)
    assert not twice, f"{len(twice)} keys committed more than once, e.g. {twice[:3]}"
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} keys missing, e.g. {sorted(missing)[:3]}"
    assert set(seen) == expected


# How each kill point is reached: the unit settings, and when to SIGKILL.
KILL_POINTS = {
    "before-first-commit": ("100000", "600000"),
    "between-units": ("4", "600000"),
    "mid-unit": ("6", "600000"),
    # Small units, many transactions: more chances to catch one open on a busy machine.
    "transaction-open": ("8", "600000"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
async def test_sigkill_at_any_point_then_again_commits_each_key_once(
    bootstrap: str, prefix: str, point: str
) -> None:
    pages, ms = KILL_POINTS[point]
    pull_id = f"eos-{point}"
    latency = 60 if point == "transaction-open" else 20  # more time between commits to catch one
    # ... and more transactions (Apache Kafka commits in milliseconds: few are caught open).
    size = SIZE * 3 if point == "transaction-open" else SIZE
    async with sandbox(sizes={"tokens": size}, max_limit=PAGE, latency_ms=latency) as (base, state):

        def args_of(pull_id: str) -> list[str]:
            units = ("--transaction-pages", pages, "--transaction-ms", ms)
            return pull_args(base, bootstrap, prefix, pull_id, *units)

        args = args_of(pull_id)
        first = await start_puller(args)

        async def served(pages: int) -> bool:
            return bool(state.stats.pages_served >= pages)

        async def commits(at_least: int) -> bool:
            return await committed_window_records(bootstrap, prefix) >= at_least

        if point == "before-first-commit":
            await until(lambda: served(20), first)
        elif point == "between-units":
            await until(lambda: commits(2), first)
        elif point == "mid-unit":
            await until(lambda: commits(1), first)
            at_commit = state.stats.pages_served
            await until(lambda: served(at_commit + 3), first)
        else:  # (the topic exists once something is committed)
            await until(lambda: commits(1), first)
            attempts = 1
            while not await frozen_in_an_open_transaction(bootstrap, f"{prefix}.tokens", first):
                # The pull ended before one of its transactions was seen open (each is open
                # for milliseconds): that run killed nothing; pull again under another id.
                code, _, err = await finished(first)
                assert code == 0, err[-2000:]
                assert attempts < 3, "no transaction was caught open in 3 whole pulls"
                attempts += 1
                pull_id = f"eos-{point}-{attempts}"
                args = args_of(pull_id)
                first = await start_puller(args)
        first.send_signal(signal.SIGKILL)
        await first.wait()

        if point == "before-first-commit":
            # Nothing is left behind: no object, no plan, no checkpoint is committed.
            assert await count(bootstrap, f"{prefix}.tokens") == 0
            assert await count(bootstrap, f"{prefix}.checkpoints") == 0
            args.append("--resume")  # the same command, resuming: starts afresh, no error
        if point == "transaction-open":
            aborted = await count(bootstrap, f"{prefix}.tokens", "read_uncommitted")
            assert aborted > await count(bootstrap, f"{prefix}.tokens")
        code, summary, err = await finished(await start_puller(args))
        expected = snapshot(state)
    assert code == 0, err[-2000:]
    assert summary["complete"]
    assert summary["resumed"] is (point != "before-first-commit")
    await assert_each_key_once(bootstrap, prefix, pull_id, expected)


async def test_a_second_process_with_the_same_pull_and_shard_fences_the_first(
    bootstrap: str, prefix: str
) -> None:
    pull_id = "eos-fenced"
    # Slow pages: the first must still be pulling when the second has started (a process's
    # start takes seconds on a busy machine; at 120 ms a page the first sometimes had finished).
    async with sandbox(sizes={"tokens": SIZE}, max_limit=PAGE, latency_ms=300) as (base, state):
        args = pull_args(base, bootstrap, prefix, pull_id, "--transaction-pages", "4")
        first = await start_puller(args)

        async def committed() -> bool:
            return await committed_window_records(bootstrap, prefix) >= 1

        await until(committed, first)
        second = await start_puller(args)
        (code, summary, err), (code2, summary2, err2) = await asyncio.gather(
            finished(first), finished(second)
        )
        expected = snapshot(state)
    assert code == 6, err[-2000:]
    assert summary["error_kind"] == "fenced"
    last = err.strip().splitlines()[-1]
    assert last.startswith("ocpi-puller: sbx/tokens: fenced: another process took over"), err
    assert code2 == 0, err2[-2000:]
    assert summary2["resumed"]
    assert summary2["complete"]
    await assert_each_key_once(bootstrap, prefix, pull_id, expected)


async def test_an_exactly_once_pull_commits_each_key_once_and_records_the_sync(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 30_000}, max_limit=PAGE) as (base, state):
        result = await pull(
            base, bootstrap, prefix, delivery="exactly-once", pull_id="eos-plain", fanout=4
        )
        expected = snapshot(state)
        again = await pull(base, bootstrap, prefix, delivery="exactly-once", pull_id="eos-plain")
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.complete
    assert summary.pull_complete_all_shards
    assert summary.objects_emitted == 30_000
    await assert_each_key_once(bootstrap, prefix, "eos-plain", expected)
    # Nothing was aborted: what read_uncommitted sees is what read_committed sees.
    assert await count(bootstrap, f"{prefix}.tokens", "read_uncommitted") == 30_000
    assert again.summaries[0].warnings == ["pull was already complete; nothing to do"]


async def test_a_broker_restart_mid_pull_still_commits_each_key_once(
    restartable_broker: RunningBroker, prefix: str
) -> None:
    bootstrap = restartable_broker.bootstrap
    async with sandbox(sizes={"tokens": 30_000}, max_limit=250, latency_ms=20) as (base, state):
        pulling = asyncio.create_task(
            pull(
                base,
                bootstrap,
                prefix,
                pull_id="eos-restart",
                delivery="exactly-once",
                transaction_pages=5,
                kafka_request_timeout_s=3.0,
                kafka_deadline_s=60.0,
            )
        )
        while state.stats.pages_served < 40:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(restartable_broker.stop)
        await asyncio.sleep(4.0)
        await asyncio.to_thread(restartable_broker.restart)
        result = await pulling
        expected = snapshot(state)
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.complete
    await assert_each_key_once(bootstrap, prefix, "eos-restart", expected)


async def test_two_shards_commit_one_plan_and_each_key_once(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 20_000}, max_limit=500) as (base, state):
        shards = await asyncio.gather(
            *(
                pull(
                    base,
                    bootstrap,
                    prefix,
                    pull_id="eos-sharded",
                    delivery="exactly-once",
                    shard_index=i,
                    shard_count=2,
                    window_size=2000,
                )
                for i in range(2)
            )
        )
        expected = snapshot(state)
    summaries = [s.summaries[0] for s in shards]
    assert all(r.exit_code == 0 for r in shards), summaries
    assert summaries[0].date_to == summaries[1].date_to  # the plan shard 0 committed
    assert summaries[0].windows + summaries[1].windows >= 10
    assert any(s.pull_complete_all_shards for s in summaries)
    await assert_each_key_once(bootstrap, prefix, "eos-sharded", expected)


async def test_digests_commit_with_their_objects_and_tombstones_follow_a_complete_pull(
    bootstrap: str, prefix: str
) -> None:
    options = {"delivery": "exactly-once", "skip_unchanged": True, "emit_tombstones": True}
    async with sandbox(sizes={"tokens": 1000}, max_limit=200) as (base, state):
        first = await pull(base, bootstrap, prefix, pull_id="eos-d1", **options)
        assert first.exit_code == 0, first.summaries[0]
        digests = await count(bootstrap, f"{prefix}.digests")
        assert digests == 1000  # committed together with the objects they describe
        dataset = state.datasets["tokens"]
        now = int(time.time() * 1000)
        changed = [dataset.update(i, now) for i in range(0, 50, 5)]
        deleted = [dataset.delete(i, now) for i in (500, 501)]
        date_to = just_after(now)  # the changes lie before the second pull's date_to
        second = await pull(base, bootstrap, prefix, pull_id="eos-d2", date_to=date_to, **options)
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert summary.objects_emitted == len(changed) == 10
    assert summary.skipped_unchanged == 1000 - len(changed) - len(deleted)
    # Tombstones are outside the transactions, and visible to read_committed consumers all
    # the same (records written without a transaction always are).
    assert summary.tombstones == len(deleted) == 2
    produced = await records(bootstrap, f"{prefix}.tokens")
    assert sum(1 for r in produced if r.value is None) == 2
