"""Signals (issue 14): SIGTERM is how Kubernetes stops a Job, SIGINT is Ctrl-C. A stopped pull says
so everywhere — a `pull_failed` event (reason `interrupted`, resumable), its summary (one JSON
line under --output json), one stderr line, exit 130 — and the same --pull-id resumes it. A
running pull sends a heartbeat event every --heartbeat-s."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import pytest

from tests.kafka_read import progress_events
from tests.support import TOKEN, keys, pinned_ms, pull, sandbox, truth_keys


async def start_pull(base: str, bootstrap: str, prefix: str, *extra: str) -> Any:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPI_PULLER_")}
    environment["OCPI_PULLER_TOKEN"] = TOKEN
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "pull",
        "--url", f"{base}/ocpi/versions", "--module", "tokens", "--ocpi-version", "2.2.1",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--topic-partitions", "3",
        "--partner", "sbx", "--limit", "100", "--concurrency", "2", *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )  # fmt: skip


async def events_of(bootstrap: str, prefix: str) -> list[Any]:
    return await progress_events(bootstrap, f"{prefix}.progress")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_mid_pull_is_visible_and_resumable(
    bootstrap: str, prefix: str, sig: signal.Signals
) -> None:
    async with sandbox(sizes={"tokens": 6000}, max_limit=100, latency_ms=40) as (base, state):
        process = await start_pull(
            base, bootstrap, prefix, "--pull-id", "stopped-1", "--output", "json"
        )
        while state.stats.pages_served < 8:
            await asyncio.sleep(0.05)
        process.send_signal(sig)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 130, err.decode()
        (line,) = out.decode().strip().splitlines()
        summary = json.loads(line)
        assert summary["exit_code"] == 130
        assert summary["error_kind"] == "interrupted"
        assert "--pull-id" in summary["error"]
        stderr = err.decode().strip().splitlines()
        assert [s for s in stderr if "interrupted" in s] == [stderr[-1]]
        assert "Traceback" not in err.decode()
        failed = [e for e in await events_of(bootstrap, prefix) if e.event == "pull_failed"]
        assert [(e.reason, e.resumable) for e in failed] == [("interrupted", True)]
        resumed = await pull(
            base, bootstrap, prefix, pull_id="stopped-1", module="tokens", ocpi_version="2.2.1",
            partner="sbx", limit=100,
        )  # fmt: skip
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(resumed))
    assert resumed.exit_code == 0, resumed.summaries[0]
    assert resumed.summaries[0].resumed
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


async def test_a_running_pull_sends_heartbeats(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 3000}, max_limit=100, latency_ms=150) as (base, _):
        process = await start_pull(base, bootstrap, prefix, "--heartbeat-s", "0.1")
        await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0
    beats = [e for e in await events_of(bootstrap, prefix) if e.event == "heartbeat"]
    assert len(beats) >= 2
    assert all(b.heartbeat_s == 0.1 for b in beats)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_a_stopped_then_resumed_pull_writes_each_object_once(
    bootstrap: str, prefix: str, delivery: str
) -> None:
    """On SIGTERM the pull stops fetching, waits for Kafka to acknowledge what it sent and
    checkpoints it; the resumed pull reads back what is there. Not one object is written
    twice, and the resumed summary counts the whole pull: objects, dead letters, dialects."""
    async with sandbox(
        sizes={"tokens": 6000},
        max_limit=100,
        latency_ms=40,
        invalid_rate=0.01,
        dialects=("space-timestamps",),
    ) as (base, state):
        process = await start_pull(
            base, bootstrap, prefix, "--pull-id", "drained-1", "--output", "json",
            "--delivery", delivery,
        )  # fmt: skip
        while state.stats.pages_served < 20:
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 130, err.decode()
        stopped = json.loads(out.decode().strip().splitlines()[-1])
        assert 0 < stopped["objects_emitted"] < 6000
        resumed = await pull(
            base, bootstrap, prefix, pull_id="drained-1", module="tokens", ocpi_version="2.2.1",
            partner="sbx", limit=100, delivery=delivery,
        )  # fmt: skip
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(resumed))
        listed = truth_keys(state, "tokens", "2.2.1", pinned_ms(resumed), valid_only=False)
    summary = resumed.summaries[0]
    assert resumed.exit_code == 0, summary
    produced = await keys(bootstrap, f"{prefix}.tokens", "read_committed")
    assert set(produced) == set(expected)
    assert len(produced) == len(expected), f"{len(produced) - len(expected)} written twice"
    assert summary.objects_emitted == len(expected)
    assert summary.dead_lettered == len(listed) - len(expected) > 0
    assert summary.dialects, summary
    assert all(count == len(expected) for count in summary.dialects.values()), summary.dialects
