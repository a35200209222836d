"""A slow but healthy broker never multiplies writes: a pull through a proxy that holds the
broker's acknowledgements back (several seconds each, or 35 s once) writes each object once,
where acknowledgements slower than the produce timeout used to be resent into sequence errors, a
new producer and an outage replay (issue 25: 384,304 messages for 199,784 keys)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.broker_proxy import BrokerProxy
from tests.support import pull, records, sandbox

MAX_MESSAGES_PER_KEY = 1.01


@pytest.fixture
async def proxy(bootstrap: str) -> AsyncIterator[BrokerProxy]:
    running = BrokerProxy(int(bootstrap.rsplit(":", 1)[1]))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def messages_per_key(bootstrap: str, topic: str, expected: int) -> float:
    counts = Counter(r.key for r in await records(bootstrap, topic))
    assert len(counts) == expected  # at least once: every key
    return sum(counts.values()) / len(counts)


@pytest.mark.slow
async def test_acks_slower_than_the_produce_timeout_write_each_object_once(
    bootstrap: str, prefix: str, proxy: BrokerProxy
) -> None:
    proxy.delay_s = 2.5  # every acknowledgement 2.5 request timeouts late
    async with sandbox(sizes={"tokens": 2_000}, max_limit=500) as (base, _):
        result = await pull(base, proxy.bootstrap, prefix, kafka_request_timeout_s=1.0)
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert (summary.resent_objects, summary.replayed_objects) == (0, 0)
    ratio = await messages_per_key(bootstrap, f"{prefix}.tokens", 2_000)
    assert ratio <= MAX_MESSAGES_PER_KEY, ratio


@pytest.mark.slow
async def test_a_broker_silent_for_35_s_once_gets_each_object_once(
    bootstrap: str, prefix: str, proxy: BrokerProxy
) -> None:
    async with sandbox(sizes={"tokens": 20_000}, max_limit=500, latency_ms=20) as (base, state):
        pulling = asyncio.create_task(pull(base, proxy.bootstrap, prefix))  # 30 s timeout
        while state.stats.pages_served < 10:
            await asyncio.sleep(0.01)
        proxy.stall(35)
        result = await pulling
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.retries >= 1  # the silence was reported
    assert (summary.resent_objects, summary.replayed_objects) == (0, 0)
    ratio = await messages_per_key(bootstrap, f"{prefix}.tokens", 20_000)
    assert ratio <= MAX_MESSAGES_PER_KEY, ratio
