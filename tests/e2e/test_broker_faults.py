"""Broker faults: Kafka goes away during a pull. The puller waits and retries (bounded by a
deadline), never counts a page done that Kafka did not acknowledge, reports the wait, and beyond
the deadline exits with a clear error and a checkpoint to resume from."""

from __future__ import annotations

import asyncio
import time

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


async def test_broker_gone_beyond_the_deadline_exits_resumably(
    restartable_broker: RunningBroker, prefix: str
) -> None:
    bootstrap = restartable_broker.bootstrap
    async with sandbox(sizes={"tokens": 20_000}, max_limit=250, latency_ms=20) as (base, state):
        pulling = asyncio.create_task(
            pull(
                base,
                bootstrap,
                prefix,
                pull_id="gone-1",
                kafka_request_timeout_s=2.0,
                kafka_deadline_s=4.0,
            )
        )
        while state.stats.pages_served < 30:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(restartable_broker.stop)
        result = await asyncio.wait_for(pulling, 120)
        summary = result.summaries[0]
        assert result.exit_code == 6, summary
        assert summary.error_kind == "kafka_unavailable"
        assert "\n" not in (summary.error or "")
        await asyncio.to_thread(restartable_broker.restart)
        resumed = await pull(base, bootstrap, prefix, pull_id="gone-1")
        expected = truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000)
    assert resumed.exit_code == 0, resumed.summaries[0]
    assert resumed.summaries[0].resumed
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
