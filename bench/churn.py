"""The churn benchmark: a partner that updates objects while they are paged (issue 13).

An update sets `last_updated` to now: the object leaves the pinned snapshot and every later offset
of its window shifts down by one. For each `--mutation-rate` (mutations per object served) a
pull of the tokens runs against the sandbox (in this process, so its ground truth is at hand) and
the embedded broker, and reports:

* `exit_code` of the pull;
* `unchanged_missing`: objects present at the pinned instant and unchanged during the pull that
  are not on Kafka (must be 0 whenever the exit code is 0: never a silent loss);
* `served_ratio`: objects the partner served ÷ objects in the snapshot (what churn costs).

Run alone: `python bench/churn.py [--tokens N] [--rates 0,0.001,0.005,0.02]`; `make bench`
includes it as its `churn` section, one `churn_section` per round, with each run's target and
verdict and per rate the spread of `served_ratio` (`churn_report`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.repeats import spread
from producer.config import PullSettings
from producer.kafka.consume import read_topic
from producer.observe.telemetry import setup_telemetry
from producer.observe.view import LogView
from producer.run import run_pulls
from sandbox.app import running_sandbox
from sandbox.broker import start_broker
from sandbox.config import SandboxConfig
from sandbox.state import SandboxState
from schemas.keys import object_key

TOKEN = "churn-token"
RATES = (0.0, 0.001, 0.005, 0.02)


def unchanged_keys(state: SandboxState, pinned_ms: int) -> set[str]:
    """Keys of the tokens present at the pin and not changed since."""
    dataset = state.datasets["tokens"]
    changed = dataset.changed_since(pinned_ms)
    keys: set[str] = set()
    for entry in dataset.state_at(pinned_ms):
        if entry.invalid is not None or entry.index in changed:
            continue
        ident = dataset.factory.identity(entry.index)
        obj = {"country_code": ident.country_code, "party_id": ident.party_id,
               "uid": ident.object_id, "type": ident.token_type}  # fmt: skip
        keys.add(object_key("tokens", "2.2.1", obj, None))
    return keys


async def churn_run(
    bootstrap: str,
    mutation_rate: float,
    *,
    tokens: int,
    max_limit: int = 1000,
    latency_ms: float = 20.0,
    concurrency: int = 8,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One pull against a churning partner; the figures above."""
    config = replace(
        SandboxConfig(port=0),
        sizes={"tokens": tokens, "locations": 0, "tariffs": 0, "sessions": 0, "cdrs": 0},
        token_value=TOKEN,
        max_limit=max_limit,
        latency_ms=latency_ms,
        mutation_rate=mutation_rate,
    )
    prefix = f"churn{uuid.uuid4().hex[:8]}"
    async with running_sandbox(config) as (base, state):
        settings = PullSettings(
            url=f"{base}/ocpi/versions",
            token=TOKEN,
            module="tokens",
            partner="churn",
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            concurrency=concurrency,
            output="json",
            progress_bar=False,
            **(extra or {}),
        )
        started = time.perf_counter()
        result = await run_pulls(settings, telemetry=setup_telemetry({}), view=LogView())
        seconds = time.perf_counter() - started
        summary = result.summaries[0]
        assert summary.date_to is not None
        pinned_ms = int(datetime.fromisoformat(summary.date_to).timestamp() * 1000)
        expected = unchanged_keys(state, pinned_ms)
        snapshot = sum(1 for e in state.datasets["tokens"].state_at(pinned_ms))
        served = state.stats.objects_served
    produced = {r.key.decode() async for r in read_topic(bootstrap, f"{prefix}.tokens")}
    return {
        "mutation_rate": mutation_rate,
        "exit_code": result.exit_code,
        "unchanged_missing": len(expected - produced),
        "served_ratio": round(served / max(1, snapshot), 2),
        "objects_served": served,
        "snapshot": snapshot,
        "seconds": round(seconds, 1),
        "step_backs": summary.step_backs,
        "shortfall": summary.shortfall,
        "windows_incomplete": summary.windows_incomplete,
        "warnings": summary.warnings[:5],
        "error": summary.error,
    }


async def churn_section(bootstrap: str, tokens: int, rates: tuple[float, ...]) -> dict[str, Any]:
    """The `churn` section of `make bench`."""
    runs = [await churn_run(bootstrap, rate, tokens=tokens) for rate in rates]
    return {
        "setup": f"{tokens} tokens, cap 1000, 20 ms per page, concurrency 8",
        "runs": runs,
    }


def churn_target(mutation_rate: float) -> str:
    """Issue 13's target for one mutation rate (0 has none there: no churn must cost nothing)."""
    if mutation_rate >= 0.02:
        return "exit 0 with 0 missing, or exit 5 with a clear shortfall; served <= 3x"
    return "exit 0, 0 missing, served <= 1.5x"


def judge_churn_run(run: dict[str, Any]) -> bool:
    """Whether one churn run meets its target; a silent loss (exit 0, missing > 0) never does."""
    if run["exit_code"] == 0 and run["unchanged_missing"] > 0:
        return False
    complete = run["exit_code"] == 0
    if run["mutation_rate"] >= 0.02:
        # A clear shortfall: the pull says which windows fell short and by how much.
        reported = run["exit_code"] == 5 and run["shortfall"] > 0 and bool(run["error"])
        return (complete or reported) and float(run["served_ratio"]) <= 3.0
    return complete and float(run["served_ratio"]) <= 1.5


def churn_report(sections: list[dict[str, Any]]) -> dict[str, Any]:
    """The `churn` section from one `churn_section` per round: every run with its target and
    verdict, and per rate the spread of `served_ratio` and whether every run passed."""
    runs = [
        {**run, "round": index + 1, "target": churn_target(run["mutation_rate"]),
         "pass": judge_churn_run(run)}
        for index, section in enumerate(sections)
        for run in section["runs"]
    ]  # fmt: skip
    by_rate = []
    for rate in dict.fromkeys(run["mutation_rate"] for run in runs):
        mine = [run for run in runs if run["mutation_rate"] == rate]
        by_rate.append(
            {
                "mutation_rate": rate,
                "target": churn_target(rate),
                "exit_codes": [run["exit_code"] for run in mine],
                "unchanged_missing_max": max(run["unchanged_missing"] for run in mine),
                "served_ratio": spread([run["served_ratio"] for run in mine]),
                "pass": all(run["pass"] for run in mine),
            }
        )
    return {
        "setup": sections[0]["setup"],
        "runs": runs,
        "by_rate": by_rate,
        "pass": all(run["pass"] for run in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=50_000)
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    args = parser.parse_args()
    rates = tuple(float(r) for r in args.rates.split(","))
    with tempfile.TemporaryDirectory(prefix="ocpi-churn-kafka-") as data:
        broker = start_broker(Path(data))
        try:
            section = asyncio.run(churn_section(broker.bootstrap, args.tokens, rates))
        finally:
            broker.stop()
    print(json.dumps(section, indent=2))


if __name__ == "__main__":
    main()
