"""Broker faults: Kafka goes away during a pull. The puller waits and retries (bounded by a
deadline), never counts a page done that Kafka did not acknowledge, reports the wait, and beyond
the deadline exits with a clear error and a checkpoint to resume from."""

from __future__ import annotations

import asyncio
import time

import pytest

from schemas.events import parse_progress_event
from tests.brokers import RunningBroker
from tests.support import keys, pull, records, sandbox, truth_keys


async def outage(broker: RunningBroker, after_pages: int, state: object, seconds: float) -> None:
    while state.stats.pages_served < after_pages:  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(broker.restart)


async def test_broker_restart_mid_pull_loses_nothing(
    restartable_broker: RunningBroker, prefix: str
) -> None:
    bootstrap = restartable_broker.bootstrap
    async with sandbox(sizes={"tokens": 30_000}, max_limit=250, latency_ms=20) as (base, state):
        pulling = asyncio.create_task(
            pull(base, bootstrap, prefix, kafka_request_timeout_s=3.0, kafka_deadline_s=60.0)
        )
        await outage(restartable_broker, 40, state, 4.0)
        result = await pulling
        expected = truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000)
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.complete
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    events = [parse_progress_event(r.value) for r in await records(bootstrap, f"{prefix}.progress")]
    waits = [e for e in events if e.event == "retry" and e.reason.startswith("kafka")]
    assert waits, "the wait for Kafka was not reported"


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_broker_gone_beyond_the_deadline_exits_resumably(
    restartable_broker: RunningBroker, prefix: str, delivery: str
) -> None:
    """--kafka-deadline-s bounds every wait on Kafka: with the broker gone for good the pull
    ends with exit 6 within the deadline and a margin (10 s), and resumes once it is back."""
    bootstrap = restartable_broker.bootstrap
    deadline_s = 4.0
    async with sandbox(sizes={"tokens": 20_000}, max_limit=250, latency_ms=20) as (base, state):
        pulling = asyncio.create_task(
            pull(
                base,
                bootstrap,
                prefix,
                pull_id="gone-1",
                kafka_request_timeout_s=2.0,
                kafka_deadline_s=deadline_s,
                delivery=delivery,
            )
        )
        while state.stats.pages_served < 30:
            await asyncio.sleep(0.02)
        # Something to resume from: exactly-once has it only once a commit landed (a run gone
        # before its first commit starts afresh, rightly not `resumed`).
        while delivery == "exactly-once" and not any(
            b"/window/" in (r.key or b"")
            for r in await records(bootstrap, f"{prefix}.checkpoints", "read_committed")
        ):
            await asyncio.sleep(0.05)
        await asyncio.to_thread(restartable_broker.stop)
        gone_at = time.monotonic()
        result = await asyncio.wait_for(pulling, 120)
        waited_s = time.monotonic() - gone_at
        summary = result.summaries[0]
        assert result.exit_code == 6, summary
        assert waited_s <= deadline_s + 10, f"exit 6 came {waited_s:.1f} s after the broker went"
        assert summary.error_kind == "kafka_unavailable"
        assert "\n" not in (summary.error or "")
        await asyncio.to_thread(restartable_broker.restart)
        resumed = await pull(base, bootstrap, prefix, pull_id="gone-1", delivery=delivery)
        expected = truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000)
    assert resumed.exit_code == 0, resumed.summaries[0]
    assert resumed.summaries[0].resumed
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_writes_a_restarted_broker_lost_are_found_and_written_again(
    restartable_broker: RunningBroker, prefix: str, delivery: str
) -> None:
    """The embedded broker, stopped with SIGTERM mid-pull, acknowledges writes while it shuts
    down and then loses them. Without the time-based replay (`--kafka-replay-s 0`), only Kafka's
    own offsets can show it: an end offset short of what was acknowledged, or an offset given
    twice. The windows concerned are written again, and the pull is complete only with every
    object in Kafka."""
    bootstrap = restartable_broker.bootstrap  # on Apache Kafka: nothing lost, nothing to find
    async with sandbox(sizes={"tokens": 60_000}, max_limit=500, latency_ms=10) as (base, state):
        pulling = asyncio.create_task(
            pull(
                base,
                bootstrap,
                prefix,
                limit=500,
                kafka_request_timeout_s=3.0,
                kafka_deadline_s=60.0,
                kafka_replay_s=0.0,
                delivery=delivery,
            )
        )
        await outage(restartable_broker, 40, state, 2.0)
        result = await pulling
        expected = truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000)
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    if delivery == "exactly-once":
        assert set(await keys(bootstrap, f"{prefix}.tokens", "read_committed")) == set(expected)
    else:
        assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
