"""The `exactly_once` section: what exactly-once delivery costs end to end (issue 16).

Each round pulls the tokens at 0 ms and at 50 ms page latency twice on one sandbox, a fresh
broker per pull: `--delivery at-least-once`, then `--delivery exactly-once` with its default
commit units (`--transaction-pages 20`, `--transaction-ms 2000`). The figure is the ratio of
their objects/s within the round; the target (>= 0.8, `TARGET`) is checked at 0 ms, where the
broker and the puller's CPU, not the partner, bound the pull and transactions cost the most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.processes import fresh_broker, run_pull, sandbox_process
from bench.repeats import merge_figure, spread

TARGET = 0.8
LATENCIES_MS = (0, 50)
MEASURES = ("objects_per_s", "cpu_us_per_object.puller", "peak_rss_mb")


def exactly_once_round(tokens: int) -> dict[str, Any]:
    """One round: at each latency, the pull at-least-once and exactly-once, side by side."""
    round_: dict[str, Any] = {}
    for latency in LATENCIES_MS:
        with sandbox_process(tokens, latency) as partner:
            with fresh_broker() as broker:
                at_least_once = run_pull(partner, broker, "--delivery", "at-least-once")
            with fresh_broker() as broker:
                exactly_once = run_pull(partner, broker, "--delivery", "exactly-once")
        round_[f"{latency}ms"] = {
            "at_least_once": at_least_once,
            "exactly_once": exactly_once,
            "ratio": round(exactly_once["objects_per_s"] / at_least_once["objects_per_s"], 2),
        }
    return round_


def exactly_once_section(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The section from its rounds: per latency each pull's median run and the ratio's spread;
    the verdict on the 0 ms ratio's median."""
    section: dict[str, Any] = {
        "setup": "tokens, one sandbox per latency, a fresh broker per pull, defaults otherwise",
    }
    for latency in LATENCIES_MS:
        runs = [one[f"{latency}ms"] for one in rounds]
        section[f"{latency}ms"] = {
            "at_least_once": merge_figure([run["at_least_once"] for run in runs], MEASURES),
            "exactly_once": merge_figure([run["exactly_once"] for run in runs], MEASURES),
            "ratio_exactly_once_vs_at_least_once": spread([run["ratio"] for run in runs]),
        }
    section["target"] = f">= {TARGET} (at 0 ms)"
    section["met"] = section["0ms"]["ratio_exactly_once_vs_at_least_once"]["median"] >= TARGET
    return section
