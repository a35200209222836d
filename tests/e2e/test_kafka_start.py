"""Kafka at start (issue 14 item 5): a broker never reached ends the run after
--kafka-connect-timeout-s with one line and exit 6 (no noise from abandoned clients); a broker
that comes up late is waited for."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from sandbox.broker import free_port, start_broker
from tests.support import TOKEN, sandbox


async def pull_process(base: str, bootstrap: str, *extra: str) -> asyncio.subprocess.Process:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPI_PULLER_")}
    environment["OCPI_PULLER_TOKEN"] = TOKEN
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "pull", "--url", f"{base}/ocpi/versions",
        "--module", "tokens", "--bootstrap-servers", bootstrap, "--output", "json", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment,
    )  # fmt: skip


async def test_a_broker_never_reached_is_one_line_and_exit_6() -> None:
    async with sandbox(sizes={"tokens": 100}) as (base, _):
        process = await pull_process(
            base, f"127.0.0.1:{free_port()}", "--kafka-connect-timeout-s", "2"
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 6
    summary = json.loads(out)
    assert summary["error_kind"] == "kafka_unavailable"
    assert "unavailable for 2 s" in summary["error"]
    stderr = err.decode()
    assert "Unclosed" not in stderr
    assert "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if "WARNING" in line]) <= 1
    assert stderr.strip().splitlines()[-1].startswith("ocpi-puller: ")


async def test_a_broker_that_comes_up_late_is_waited_for(tmp_path: Path) -> None:
    port = free_port()
    async with sandbox(sizes={"tokens": 300}) as (base, _):
        process = await pull_process(base, f"127.0.0.1:{port}", "--kafka-connect-timeout-s", "30")
        await asyncio.sleep(2)
        broker = await asyncio.to_thread(start_broker, tmp_path / "late", port)
        try:
            out, err = await asyncio.wait_for(process.communicate(), 90)
        finally:
            await asyncio.to_thread(broker.stop)
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["objects_emitted"] == 300
