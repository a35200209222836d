"""A small chaos run (`make chaos` runs the full one): every fault at once, a SIGKILLed puller,
a restarted broker; nothing that existed at the pinned instant and did not change may be
missing from Kafka."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.chaos import ChaosOptions, run_chaos

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
        reason="stops and restarts its own embedded broker",
    ),
]


@pytest.mark.parametrize("link_style", ["absolute", "one-shot"])
async def test_small_chaos_run_loses_nothing(link_style: str, tmp_path: Path) -> None:
    report = await run_chaos(ChaosOptions(tokens=40_000, link_style=link_style), tmp_path)
    assert report.killed
    assert report.broker_restarted
    assert report.gracefully_stopped
    assert report.duplicates_after_graceful_stop == 0, report
    assert set(report.faults) >= {"error", "throttle"}
    assert report.objects_missing == 0, report
    assert report.invalid_missing == 0, report
    assert report.complete, report
    assert report.duplicates <= report.duplicate_bound, report
    assert report.passed


async def test_small_exactly_once_chaos_run_commits_each_object_once(tmp_path: Path) -> None:
    options = ChaosOptions(tokens=40_000, link_style="absolute", delivery="exactly-once")
    report = await run_chaos(options, tmp_path)
    assert report.killed
    assert report.broker_restarted
    assert report.objects_missing == 0, report
    assert report.invalid_missing == 0, report
    assert report.duplicates_read_committed == 0, report
    assert report.complete, report
    assert report.passed
