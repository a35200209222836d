"""The `adaptive` section (issue 18): does the default pull find a partner's capacity?

The whole `ocpi-puller pull` (process start and planning probes included: its wall time) at
default flags (`--concurrency auto`) against a sandbox process with finite capacity:
`--capacity-workers K --latency-ms 200 --max-limit 500` serves at most K requests at once, so
its capacity is K / 0.2 s × 500 objects/s (K=12: 30,000/s, 400,000 tokens; K=2: 5,000/s,
100,000 tokens). Reported per partner: objects/s and its ratio to capacity, the share of
requests answered 429 (the sandbox's `/_sandbox/stats`), the concurrency the pull settled on
(its summary's `concurrency_min/max/final`), where the wall time went (`phases`), and the same
pull pinned at `--concurrency 4` (the old default) for comparison, in the first round only.

The sandbox is started without `--capacity-queue`, as the issue's target is: requests beyond K
wait (latency grows with load) and none is refused, so a 429 here would be the puller's doing.
`bench/adaptive_sim.py` is the pure simulation of the same partners; this is the real thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.processes import fresh_broker, partner_stats, run_pull, sandbox_process
from bench.repeats import merge_figure

LATENCY_MS = 200
MAX_LIMIT = 500
PINNED_4 = ("--concurrency", "4")
# What `merge_figure` reports the median, min and max of (the first picks the run that stands).
MEASURES = ("ratio_to_capacity", "share_429", "objects_per_s", "puller_cpu_us_per_object")


@dataclass(frozen=True, slots=True)
class CapacityCase:
    """A partner with K workers, and how many tokens to pull from it."""

    workers: int
    tokens: int

    @property
    def name(self) -> str:
        """The section's key for this partner."""
        return f"workers_{self.workers}"

    @property
    def capacity(self) -> float:
        """Objects/s when every worker is busy with a full page."""
        return self.workers / (LATENCY_MS / 1000) * MAX_LIMIT

    @property
    def sandbox_flags(self) -> str:
        """The sandbox's flags beyond the tokens, as given to it."""
        return (
            f"--capacity-workers {self.workers} --latency-ms {LATENCY_MS} --max-limit {MAX_LIMIT}"
        )


CASES = (CapacityCase(workers=12, tokens=400_000), CapacityCase(workers=2, tokens=100_000))


def capacity_pull(case: CapacityCase, *flags: str) -> dict[str, Any]:
    """One pull against a fresh capacity-bound sandbox and broker; the section's figures."""
    with (
        sandbox_process(
            case.tokens,
            LATENCY_MS,
            max_limit=MAX_LIMIT,
            flags=("--capacity-workers", str(case.workers)),
        ) as partner,
        fresh_broker() as broker,
    ):
        pull = run_pull(partner, broker, *flags, watch=True, check=False)
        stats = partner_stats(partner)
    # The sandbox counts every status, its `/_sandbox/stats` answers to the bench included;
    # its capacity gate sees only OCPI requests (served or refused with 429).
    statuses: dict[str, int] = stats["statuses"]
    statuses["200"] = statuses.get("200", 0) - pull.get("sandbox_stats_polls", 0)
    gate = stats["capacity"]
    answered = gate["served"] + gate["rejected"]
    list_requests = stats["requests"].get("list", 0)
    phases = pull["phases"]
    figure = {
        "flags": pull["flags"],
        "objects": pull["objects"],
        "seconds": pull["seconds"],
        "objects_per_s": pull["objects_per_s"],
        "ratio_to_capacity": round(pull["objects_per_s"] / case.capacity, 3),
        "share_429": round(statuses.get("429", 0) / max(1, answered), 4),
        "concurrency": pull["concurrency"],
        "complete": pull["complete"],
        "phases": phases,
        "requests": answered,
        "statuses": statuses,  # of OCPI requests (the bench's stats polls left out)
        "pages": pull["pages"],
        # List requests that were not acknowledged pages: the `limit=1` planning probes, and
        # any step-back re-read or retry.
        "list_requests_beyond_pages": list_requests - pull["pages"],
        "windows": pull["windows"],
        "partner_capacity": gate,
        "puller_cpu_us_per_object": pull["cpu_us_per_object"]["puller"],
        "peak_rss_mb": pull["peak_rss_mb"],
    }
    if "objects_per_s_while_fetching" in phases:
        figure["ratio_to_capacity_while_fetching"] = round(
            phases["objects_per_s_while_fetching"] / case.capacity, 3
        )
    if "exit_code" in pull:
        figure["exit_code"] = pull["exit_code"]
        figure["error"] = pull["error"]
    return figure


def adaptive_round(*, first: bool) -> dict[str, dict[str, Any]]:
    """One round: per partner the default pull (and, `first`, the pull pinned at 4)."""
    runs: dict[str, dict[str, Any]] = {}
    for case in CASES:
        runs[case.name] = {"defaults": capacity_pull(case)}
        if first:
            runs[case.name]["concurrency_4"] = capacity_pull(case, *PINNED_4)
    return runs


def adaptive_section(rounds: Sequence[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The `adaptive` section from its rounds: the default pull's median run and spread."""
    section: dict[str, Any] = {
        "setup": (
            f"sandbox --latency-ms {LATENCY_MS} --max-limit {MAX_LIMIT} --capacity-workers K "
            "(no --capacity-queue); the pull at default flags (--concurrency auto), its wall "
            "time; --concurrency 4 (the old default) for comparison"
        ),
    }
    for case in CASES:
        defaults = merge_figure([one[case.name]["defaults"] for one in rounds], MEASURES)
        section[case.name] = {
            "sandbox": case.sandbox_flags,
            "tokens": case.tokens,
            "capacity_objects_per_s": round(case.capacity),
            "defaults": defaults,
            "concurrency_4": rounds[0][case.name].get("concurrency_4"),
            "target": "ratio_to_capacity >= 0.8 and share_429 < 0.01",
            "met": (
                defaults["spread"]["ratio_to_capacity"]["median"] >= 0.8
                and defaults["spread"]["share_429"]["median"] < 0.01
            ),
        }
    return section
