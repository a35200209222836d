"""The unordered benchmark: a partner that lists every request's date window in a new order
(issue 23), next to the same partner listing by last_updated.

Each run pulls the tokens from the sandbox (in this process, so its ground truth is at hand) and
the embedded broker, and reports the exit code, the keys missing, the objects and pages the
partner served for them, the narrowed windows and the count requests planning spent against its
budget (2 × windows + 16).

Run alone: `python bench/unordered.py [--tokens N]`; `make bench` includes it as its `unordered`
section.
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
from schemas.keys import object_key

TOKEN = "unordered-token"
TOKENS = 20_000
PAGE_CAP = 250
ORDERS = ("unstable", "last_updated")


async def unordered_run(bootstrap: str, order: str, *, tokens: int) -> dict[str, Any]:
    """One pull of `tokens` tokens at a page cap of 250, the list `unstable` or by
    `last_updated`."""
    config = replace(
        SandboxConfig(port=0),
        sizes={"tokens": tokens, "locations": 0, "tariffs": 0, "sessions": 0, "cdrs": 0},
        token_value=TOKEN,
        max_limit=PAGE_CAP,
        unordered=order == "unstable",
    )
    prefix = f"unordered{uuid.uuid4().hex[:8]}"
    async with running_sandbox(config) as (base, state):
        settings = PullSettings(
            url=f"{base}/ocpi/versions",
            token=TOKEN,
            module="tokens",
            partner="unordered",
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            output="json",
            progress_bar=False,
        )
        started = time.perf_counter()
        result = await run_pulls(settings, telemetry=setup_telemetry({}), view=LogView())
        seconds = time.perf_counter() - started
        summary = result.summaries[0]
        assert summary.date_to is not None
        pinned_ms = int(datetime.fromisoformat(summary.date_to).timestamp() * 1000)
        dataset = state.datasets["tokens"]
        expected = set()
        for entry in dataset.state_at(pinned_ms):
            ident = dataset.factory.identity(entry.index)
            obj = {"country_code": ident.country_code, "party_id": ident.party_id,
                   "uid": ident.object_id, "type": ident.token_type}  # fmt: skip
            expected.add(object_key("tokens", "2.2.1", obj, None))
        served, pages = state.stats.objects_served, state.stats.pages_served
    produced = {r.key.decode() async for r in read_topic(bootstrap, f"{prefix}.tokens")}
    budget = 2 * summary.windows + 16
    return {
        "order": order,
        "exit_code": result.exit_code,
        "missing": len(expected - produced),
        "objects_served": served,
        "served_ratio": round(served / max(1, len(expected)), 3),
        "pages_served": pages,
        "windows": summary.windows,
        "narrowed_windows": summary.narrowed_windows,
        "partner_order": summary.partner_order,
        "planning_requests": summary.planning_requests,
        "planning_budget": budget,
        "seconds": round(seconds, 1),
        "pass": (
            result.exit_code == 0
            and not expected - produced
            and served <= 2 * len(expected)
            and summary.planning_requests <= budget
        ),
    }


async def unordered_section(bootstrap: str, tokens: int = TOKENS) -> dict[str, Any]:
    """The `unordered` section of one round."""
    return {
        "setup": f"{tokens} tokens, page cap {PAGE_CAP}, default settings",
        "runs": [await unordered_run(bootstrap, order, tokens=tokens) for order in ORDERS],
    }


def unordered_report(sections: list[dict[str, Any]]) -> dict[str, Any]:
    """Every round's runs, and per order the spread of what a target names."""
    runs = [
        {**run, "round": index + 1}
        for index, section in enumerate(sections)
        for run in section["runs"]
    ]
    by_order = []
    for order in ORDERS:
        mine = [run for run in runs if run["order"] == order]
        by_order.append(
            {
                "order": order,
                "target": "exit 0, 0 missing, served <= 2x, planning <= 2 x windows + 16",
                "served_ratio": spread([run["served_ratio"] for run in mine]),
                "pages_served": spread([run["pages_served"] for run in mine]),
                "planning_requests": spread([run["planning_requests"] for run in mine]),
                "pass": all(run["pass"] for run in mine),
            }
        )
    return {
        "setup": sections[0]["setup"],
        "runs": runs,
        "by_order": by_order,
        "pass": all(run["pass"] for run in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=TOKENS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocpi-unordered-kafka-") as data:
        broker = start_broker(Path(data))
        try:
            section = asyncio.run(unordered_section(broker.bootstrap, args.tokens))
        finally:
            broker.stop()
    print(json.dumps(unordered_report([section]), indent=2))


if __name__ == "__main__":
    main()
