"""`make bench`: every performance figure in one run, printed as one JSON document.

All on one machine (puller, sandbox partner and embedded broker share its CPUs), in sections:

* `figures` (bench/throughput.py): our pull end to end at default settings next to its peers
  (naive pull, dlt, plain aiohttp) and ceilings (our fetch path with no Kafka, aiokafka with no
  HTTP), RSS by object count (`memory`), page validation (bench/bench_validation.py);
* `cpu_us_per_object`: the puller's CPU per object, fetch-only and end to end;
* `adaptive` (bench/adaptive.py): the default pull against partners of finite capacity;
* `churn` (bench/churn.py): pulls from a partner that updates objects while they are paged;
* `unordered` (bench/unordered.py): a partner listing in another order at every request;
* `exactly_once` (bench/exactly_once.py): exactly-once next to at-least-once at 0 and 50 ms;
* `cpu` (bench/cpu.py): the puller's CPU per token and per location in whole pulls at 0 ms,
  and with `--baseline REF` the same pulls by commit REF's code, interleaved;
* `instructions` (bench/instructions.py): instructions per object of the in-process hot path
  (callgrind; they repeat within 1%), and its µs per object, with `--baseline REF` side by side
  with commit REF's code;
* `ratios`, `targets` and `target_check`: figures of this one run side by side, against the
  issues' targets.

`--repeat N` runs N rounds: every figure a target names is measured in each, and reported as
its median run with `spread` (median, min, max, every run); ratios are taken within a round.
What is repeated and what only in the first round is listed under `repeat`. `--sections`
picks sections (a quick look at one of them); set-up talk and progress go to stderr, so
`make bench > bench.json` gets only the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_validation
from bench.adaptive import CASES, adaptive_round, adaptive_section
from bench.churn import RATES, churn_report, churn_section
from bench.cpu import cpu_budget, cpu_pulls_round, cpu_pulls_section, cpu_round, cpu_section
from bench.exactly_once import exactly_once_round, exactly_once_section
from bench.instructions import checkout, instructions_section
from bench.processes import fresh_broker
from bench.repeats import merge_numbers, merge_rounds
from bench.targets import check_targets
from bench.throughput import (
    MEMORY_MEASURES,
    REPEATED,
    memory_round,
    ratios_of,
    throughput_round,
)
from bench.unordered import unordered_report, unordered_section

SECTIONS = (
    "throughput",
    "adaptive",
    "churn",
    "unordered",
    "exactly_once",
    "validation",
    "instructions",
    "cpu",
)
CHURN_TOKENS = 50_000


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "platform": platform.platform(),
        "note": "one machine: sandbox, broker and client share the CPUs",
    }


class Clock:
    """Wall time per section over all rounds, and progress lines on stderr."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def section(self, name: str, round_no: int, rounds: int) -> Iterator[None]:
        """Time one section of one round."""
        print(f"bench: round {round_no}/{rounds}: {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        yield
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 1)

    def report(self) -> dict[str, Any]:
        """Seconds in all and per section."""
        return {
            "seconds": round(time.perf_counter() - self.started, 1),
            "seconds_by_section": self.seconds,
        }


async def run(
    tokens: int, with_10m: bool, repeat: int, sections: set[str], baseline: str | None = None
) -> dict[str, Any]:
    """Every selected section, `repeat` rounds; the JSON document."""
    clock = Clock()
    throughput: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    ratios: list[dict[str, float]] = []
    cpu: list[dict[str, float]] = []
    adaptive: list[dict[str, Any]] = []
    churn: list[dict[str, Any]] = []
    exactly_once: list[dict[str, Any]] = []
    unordered: list[dict[str, Any]] = []
    cpu_pulls: list[dict[str, float]] = []
    baseline_tree = None
    with contextlib.ExitStack() as stack:
        if baseline is not None and "cpu" in sections:
            baseline_tree = stack.enter_context(checkout(baseline))
        codes: dict[str, Path | None] = {"ours": None}
        if baseline_tree is not None:
            codes["baseline"] = baseline_tree
        for index in range(repeat):
            if "cpu" in sections:
                with clock.section("cpu", index + 1, repeat):
                    cpu_pulls.append(cpu_pulls_round(codes))
    for index in range(repeat):
        first, no = index == 0, index + 1
        if "throughput" in sections:
            with clock.section("throughput", no, repeat):
                throughput.append(await throughput_round(tokens, first=first))
                e2e_0ms = throughput[-1]["ours_end_to_end_0ms"]
                memory.append(memory_round(tokens, e2e_0ms, with_10m=with_10m))
                ratios.append(ratios_of(throughput[-1], memory[-1], tokens))
                cpu.append(cpu_round(throughput[-1]))
        if "adaptive" in sections:
            with clock.section("adaptive", no, repeat):
                adaptive.append(adaptive_round(first=first))
        if "churn" in sections:
            with clock.section("churn", no, repeat), fresh_broker() as broker:
                churn.append(await churn_section(broker.bootstrap, CHURN_TOKENS, RATES))
        if "unordered" in sections:
            with clock.section("unordered", no, repeat), fresh_broker() as broker:
                unordered.append(await unordered_section(broker.bootstrap))
        if "exactly_once" in sections:
            with clock.section("exactly_once", no, repeat):
                exactly_once.append(exactly_once_round(tokens))

    document: dict[str, Any] = {"machine": machine(), "tokens": tokens}
    document["repeat"] = repeat_note(repeat, sections, memory)
    figures: dict[str, Any] = merge_rounds(throughput, REPEATED)
    if throughput:
        figures["cpu_budget_0ms"] = cpu_budget(figures["ours_end_to_end_0ms"])
        figures["memory"] = merge_rounds(memory, dict.fromkeys(memory[0], MEMORY_MEASURES))
        document["cpu_us_per_object"] = cpu_section(cpu, figures)
    if "validation" in sections:
        with clock.section("validation", 1, 1):
            figures["validation"] = bench_validation.measure()["modules"]
    document["figures"] = figures
    if "instructions" in sections:
        with clock.section("instructions", 1, 1):
            document["instructions"] = instructions_section(baseline)
    if adaptive:
        document["adaptive"] = adaptive_section(adaptive)
    if churn:
        document["churn"] = churn_report(churn)
    if unordered:
        document["unordered"] = unordered_report(unordered)
    if exactly_once:
        document["exactly_once"] = exactly_once_section(exactly_once)
    if cpu_pulls:
        document["cpu"] = cpu_pulls_section(cpu_pulls, baseline)
    spread = merge_numbers(ratios)
    document["ratios"] = {name: entry["median"] for name, entry in spread.items()}
    document["ratio_spread"] = spread
    document["targets"], document["target_check"] = check_targets(document)
    document["run"] = {**clock.report(), "sections": sorted(sections), "repeat": repeat}
    return document


def repeat_note(repeat: int, sections: set[str], memory: list[dict[str, Any]]) -> dict[str, Any]:
    """Which figures were measured in every round, and which in the first only."""
    repeated: list[str] = []
    once: list[str] = []
    if "throughput" in sections:
        repeated += [f"figures.{name}" for name in REPEATED]
        repeated += [f"figures.memory.{name}" for name in memory[0]]
        once += [
            "figures.ours_end_to_end_0ms_concurrency_8",
            "figures.ours_end_to_end_50ms_concurrency_8",
            "figures.naive_pull_0ms",
            "figures.aiohttp_sequential_fetch_only_0ms",
            "figures.produce_ceiling.per_message_send",
        ]
    if "adaptive" in sections:
        repeated += [f"adaptive.{case.name}.defaults" for case in CASES]
        once += [f"adaptive.{case.name}.concurrency_4" for case in CASES]
    if "churn" in sections:
        repeated.append("churn (every rate)")
    if "unordered" in sections:
        repeated.append("unordered (both orders)")
    if "exactly_once" in sections:
        repeated.append("exactly_once")
    if "validation" in sections:
        once.append("figures.validation (best of 5 runs of its own)")
    if "instructions" in sections:
        once.append("instructions (counts repeat within 1%; µs: median of 3 runs of its own)")
    if "cpu" in sections:
        repeated.append("cpu (every figure, ours and --baseline interleaved)")
    return {
        "n": repeat,
        "repeated": repeated,
        "first_round_only": once,
        "how": (
            "a repeated figure is its median run (by its first `spread` measure) plus `spread`: "
            "median, min, max and every run; ratios are taken within a round, `ratios` holds "
            "their medians and `ratio_spread` the rest; targets are checked on the medians"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="ocpi-puller benchmarks (one JSON document)")
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--with-10m", action="store_true", help="also the 10M-object RSS run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every figure a target names (median)"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, of {','.join(SECTIONS)} (default all)",
    )
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="the instructions and cpu sections also measure this commit's code, side by side",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if args.repeat < 1 or not sections <= set(SECTIONS):
        parser.error(f"--repeat 1 or more; --sections of {','.join(SECTIONS)}")
    document = asyncio.run(run(args.tokens, args.with_10m, args.repeat, sections, args.baseline))
    print(json.dumps(document, indent=2), flush=True)


if __name__ == "__main__":
    main()
