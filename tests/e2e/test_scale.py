"""Scale features against the sandbox and a real broker: completeness while the partner's data
changes, SIGKILL and resume, incremental pulls, and shards that share one pull."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter

import orjson
import pytest

from tests.support import (
    TOKEN,
    expected_survivors,
    just_after,
    keys,
    pinned_ms,
    pull,
    records,
    sandbox,
    truth_keys,
    truth_keys_for,
)

pytestmark = pytest.mark.slow


async def test_nothing_unchanged_is_missed_while_the_partner_mutates(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 200_000}, max_limit=500, mutation_rate=0.002) as (
        base,
        state,
    ):
        result = await pull(base, bootstrap, prefix, concurrency=8, window_size=20_000, limit=500)
        summary = result.summaries[0]
        pin = pinned_ms(result)
        survivors = expected_survivors(state, "tokens", "2.2.1", pin)
        mutations = len(state.datasets["tokens"].mutations)
    assert mutations > 300
    assert summary.windows >= 10
    assert summary.step_backs > 0, "the test did not exercise shrinking windows"
    produced = set(await keys(bootstrap, f"{prefix}.tokens"))
    missing = survivors - produced
    assert not missing, f"{len(missing)} unchanged objects missing, e.g. {sorted(missing)[:3]}"
    assert result.exit_code == 0, summary


async def start_puller(*args: str) -> asyncio.subprocess.Process:
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


@pytest.mark.parametrize("link_style", ["absolute", "one-shot"])
async def test_sigkill_then_resume_completes_with_bounded_duplicates(
    bootstrap: str, prefix: str, link_style: str
) -> None:
    size, page_size, concurrency, fanout = 60_000, 500, 2, 2
    async with sandbox(
        sizes={"tokens": size}, max_limit=page_size, latency_ms=30, link_style=link_style
    ) as (base, state):
        args = [
            "--url", f"{base}/ocpi/versions", "--module", "tokens",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
            "--pull-id", "killed-1", "--partner", "sbx",
            "--concurrency", str(concurrency), "--fanout", str(fanout),
            "--window-size", "15000", "--output", "json", "--topic-partitions", "3",
        ]  # fmt: skip
        first = await start_puller(*args)
        while state.stats.pages_served < 40:
            await asyncio.sleep(0.05)
            assert first.returncode is None, (await first.communicate())[1].decode()
        first.send_signal(signal.SIGKILL)
        await first.wait()
        produced_before = len(await records(bootstrap, f"{prefix}.tokens"))
        assert 0 < produced_before < size
        second = await start_puller(*args)
        out, err = await second.communicate()
        assert second.returncode == 0, err.decode()
        summary = orjson.loads(out.splitlines()[-1])
        expected = truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000)
    assert summary["resumed"]
    assert summary["complete"]
    assert summary["pull_id"] == "killed-1"
    produced = await keys(bootstrap, f"{prefix}.tokens")
    assert set(produced) == set(expected)
    duplicates = len(produced) - len(set(produced))
    # Only pages in flight when the process died can be produced twice.
    in_flight_pages = 2 * concurrency * fanout + concurrency * fanout
    assert duplicates <= in_flight_pages * page_size, duplicates


async def test_incremental_pull_takes_only_what_changed(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tariffs": 5000}) as (base, state):
        full = await pull(base, bootstrap, prefix, module="tariffs", pull_id="full-1")
        assert full.exit_code == 0
        dataset = state.datasets["tariffs"]
        now = int(time.time() * 1000)  # at or after the full pull's pinned instant
        changed = {m.index for m in (dataset.update(i, now) for i in (3, 700, 4999)) if m}
        changed.add(dataset.insert(now).index)
        incremental = await pull(
            base, bootstrap, prefix, module="tariffs", pull_id="inc-1", incremental=True,
            date_to=just_after(now),  # the changes lie before the incremental's date_to
        )  # fmt: skip
    summary = incremental.summaries[0]
    assert incremental.exit_code == 0, summary
    assert summary.kind == "incremental"
    assert summary.date_from is not None
    assert summary.date_from < full.summaries[0].date_to
    produced = list(await records(bootstrap, f"{prefix}.tariffs"))
    by_pull = Counter(dict(r.headers)["pull-id"].decode() for r in produced)
    assert by_pull == {"full-1": 5000, "inc-1": len(changed)}
    incremental_keys = {r.key.decode() for r in produced if dict(r.headers)["pull-id"] == b"inc-1"}
    assert incremental_keys == set(truth_keys_for(state, "tariffs", "2.2.1", changed))


async def test_two_shards_produce_exactly_what_one_process_would(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 30_000}, max_limit=500) as (base, state):
        shards = await asyncio.gather(
            *(
                pull(
                    base,
                    bootstrap,
                    prefix,
                    pull_id="sharded-1",
                    shard_index=i,
                    shard_count=2,
                    window_size=3000,
                )
                for i in range(2)
            )
        )
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(shards[0]))
    summaries = [s.summaries[0] for s in shards]
    assert all(r.exit_code == 0 for r in shards), summaries
    assert summaries[0].date_to == summaries[1].date_to  # one plan, shared through Kafka
    assert summaries[0].windows + summaries[1].windows >= 10
    assert abs(summaries[0].windows - summaries[1].windows) <= 1
    produced = await keys(bootstrap, f"{prefix}.tokens")
    assert len(produced) == len(set(produced)) == 30_000
    assert set(produced) == set(expected)
    assert any(s.pull_complete_all_shards for s in summaries)
