"""`ocpi-puller demo`: the whole product on one machine, then proof that nothing was lost.

Starts the embedded broker (noida-db) and the sandbox partner, pulls every token with the live
progress bar, then checks the pull as `ocpi-puller verify --against-partner` does (the pull's
messages read back by their pull-id header, compared key by key), with the sandbox's ground truth
as the partner's keys; prints a summary, and stops what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp
import orjson

from producer.commands.verify import judge, read_pull
from producer.config import PullSettings
from producer.errors import ConfigError, IncompletePullError
from producer.observe.view import make_view
from producer.ocpi.planning.listing import Listing
from producer.report import print_result
from producer.run import RunResult, run_pulls
from schemas.keys import key_function

SANDBOX_TOKEN = "demo-token"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo pulls."""

    tokens: int = 1_000_000
    max_limit: int = 500
    concurrency: int | Literal["auto"] = 8
    topic_prefix: str = "ocpi"


@contextlib.asynccontextmanager
async def sandbox_process(options: DemoOptions) -> AsyncIterator[str]:
    """The sandbox partner as a separate process (as a real partner is); yields its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "producer.cli",
        "sandbox",
        "--port",
        "0",
        "--tokens",
        str(options.tokens),
        "--max-limit",
        str(options.max_limit),
        "--token-value",
        SANDBOX_TOKEN,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        if "http://" not in line:
            raise ConfigError("the sandbox did not start")
        url = line.split(" at ", 1)[1].split("/ocpi/versions", 1)[0]
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def expected_keys(base_url: str) -> set[str]:
    """Keys of every token the sandbox holds (its ground truth, over HTTP)."""
    make_key = key_function("tokens", "2.2.1", None)
    keys: set[str] = set()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/_sandbox/truth?module=tokens") as response,
    ):
        async for line in response.content:
            record = orjson.loads(line)
            keys.add(make_key({**record, "uid": record["id"]}))
    return keys


async def run_demo(options: DemoOptions) -> int:
    """Run the demo; returns the exit code."""
    from sandbox.broker import start_broker

    data_dir = Path(tempfile.mkdtemp(prefix="ocpi-puller-demo-"))
    broker = start_broker(data_dir)
    print(f"embedded Kafka (noida-db) at {broker.bootstrap}", flush=True)
    try:
        async with sandbox_process(options) as base_url:
            print(
                f"sandbox partner at {base_url}/ocpi/versions: {options.tokens:,} tokens, "
                f"server cap {options.max_limit} per page",
                flush=True,
            )
            settings = PullSettings(
                url=f"{base_url}/ocpi/versions",
                token=SANDBOX_TOKEN,
                module="tokens",
                partner="sandbox",
                bootstrap_servers=broker.bootstrap,
                topic_prefix=options.topic_prefix,
                concurrency=options.concurrency,
                limit=1000,
            )
            started = time.monotonic()
            result: RunResult = await run_pulls(settings, view=make_view(True))
            elapsed = time.monotonic() - started
            print_result(result, "text")
            summary = result.summaries[0]
            if result.exit_code != 0:
                return result.exit_code  # its one line is printed: nothing to verify
            print("verifying: the pull's messages read back, compared with the sandbox's truth…")
            truth = Listing(keys=await expected_keys(base_url))
            (pull,) = await read_pull(
                settings.kafka_connection(), options.topic_prefix, summary.pull_id
            )
            _, lines, failure = judge(pull, truth)
        print("\n" + "\n".join(lines))
        print(
            f"pull: {summary.objects_emitted:,} objects in {elapsed:.1f} s "
            f"({summary.objects_emitted / elapsed:,.0f} objects/s), {summary.pages} pages, "
            f"{summary.windows} windows, complete={summary.complete}"
        )
        if failure is not None:
            raise failure
        if not summary.complete:
            raise IncompletePullError("demo failed: the pull is not complete")
        print("demo OK: every token arrived, once per key.")
        return result.exit_code
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
