"""The broker's JVM killed (-9) mid-pull and started again on the same log directories: the pull
waits, goes on and ends complete with nothing missing; exactly once, a read_committed consumer
sees every key once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from sandbox.apache_kafka.broker import ApacheKafka
from sandbox.state import SandboxState
from tests.brokers import only_broker
from tests.support import pull, records, sandbox, truth_keys

pytestmark = only_broker(
    "apache",
    reason="noida-db keeps its data in a snapshot written at shutdown: after kill -9 it has "
    "lost what came since its last snapshot, which no client can make up for",
)


async def crash(broker: ApacheKafka, state: SandboxState, after_pages: int) -> None:
    while state.stats.pages_served < after_pages:
        await asyncio.sleep(0.02)
    await asyncio.to_thread(broker.kill)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(broker.restart)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_a_broker_killed_mid_pull_loses_nothing(
    restartable_broker: ApacheKafka, prefix: str, delivery: str
) -> None:
    broker = restartable_broker
    async with sandbox(sizes={"tokens": 30_000}, max_limit=250, latency_ms=20) as (base, state):
        pulling = asyncio.create_task(
            pull(
                base,
                broker.bootstrap,
                prefix,
                pull_id="crash",
                delivery=delivery,
                transaction_pages=5,
                kafka_request_timeout_s=3.0,
                kafka_deadline_s=120.0,
            )
        )
        await crash(broker, state, 40)
        result = await pulling
        expected = set(truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.complete
    seen = Counter(
        (r.key or b"").decode()
        for r in await records(broker.bootstrap, f"{prefix}.tokens")  # read_committed
        if dict(r.headers).get("pull-id") == b"crash"
    )
    assert not expected - set(seen), f"{len(expected - set(seen))} missing"
    if delivery == "exactly-once":
        assert max(seen.values()) == 1, "a key committed twice"
