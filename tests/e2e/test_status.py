"""`ocpi-puller status` against a real broker: a running pull's progress, then its end state."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta

from producer.observe.status import ProgressFollower, PullStatus
from tests.support import TOKEN, sandbox


async def statuses(bootstrap: str, prefix: str) -> list[PullStatus]:
    from datetime import UTC, datetime

    async with ProgressFollower(
        bootstrap, f"{prefix}.progress", datetime.now(UTC) - timedelta(hours=1)
    ) as follower:
        await follower.catch_up()
        return list(follower.statuses.values())


async def test_status_shows_a_running_pull_and_its_end(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 20_000}, max_limit=200, latency_ms=40) as (base, _):
        puller = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "producer.cli", "pull",
            "--url", f"{base}/ocpi/versions", "--module", "tokens",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
            "--partner", "sbx", "--pull-id", "watched-1", "--concurrency", "2", "--fanout", "1",
            "--output", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
        running: list[PullStatus] = []
        for _ in range(200):
            await asyncio.sleep(0.1)
            running = await statuses(bootstrap, prefix)
            if running and running[0].objects_emitted > 0:
                break
        assert running, "no progress seen while the pull ran"
        assert running[0].state == "running"
        assert 0 < running[0].objects_emitted < 20_000
        assert running[0].total_reported == 20_000
        assert running[0].rate_per_s
        assert running[0].rate_per_s > 0
        await puller.communicate()
        assert puller.returncode == 0
    (done,) = await statuses(bootstrap, prefix)
    assert done.pull_id == "watched-1"
    assert (done.state, done.objects_emitted, done.partner, done.module) == (
        "complete",
        20_000,
        "sbx",
        "tokens",
    )
    assert done.windows_done == done.windows_total

    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "status",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--output", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await command.communicate()
    assert command.returncode == 0, err.decode()
    (line,) = out.decode().splitlines()
    (pull,) = json.loads(line)["pulls"]
    assert pull["state"] == "complete"
    assert pull["objects_emitted"] == 20_000
    assert pull["age_s"] >= 0


async def test_status_without_kafka_is_one_clear_line() -> None:
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "status", "--bootstrap-servers", "127.0.0.1:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await command.communicate()
    assert command.returncode == 6
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert "cannot read progress from Kafka" in lines[0]
