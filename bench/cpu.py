"""The puller's CPU per object (`cpu_us_per_object`), and this machine's CPU budget.

End to end: the user + system CPU of the `ocpi-puller pull` process (its default settings unless
a key names others) ÷ objects. Fetch-only: this bench process's CPU across its own fetch path
(`ceilings.our_fetch_only`: plan, fetch, parse, validate, key; no Kafka). A pull also costs a
fixed amount whatever it reads (`ours_pull_fixed_cost`: ~1 s, so ~1 µs/object at 1M objects
and ~10 at 100k); `end_to_end_0ms_less_fixed_cost` takes it out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.processes import fresh_broker, run_pull, sandbox_process
from bench.repeats import merge_numbers


def cpu_round(figures: dict[str, Any]) -> dict[str, float]:
    """The puller's µs of CPU per object in one round's figures."""
    e2e_0ms = figures["ours_end_to_end_0ms"]
    fixed_s = figures["ours_pull_fixed_cost"]["cpu_s"]["puller"]
    return {
        "end_to_end_0ms": e2e_0ms["cpu_us_per_object"]["puller"],
        "end_to_end_50ms": figures["ours_end_to_end_50ms"]["cpu_us_per_object"]["puller"],
        "fetch_only_0ms": figures["ours_fetch_only_no_kafka_0ms"]["cpu_us_per_object"]["puller"],
        "end_to_end_0ms_less_fixed_cost": round(
            (e2e_0ms["cpu_s"]["puller"] - fixed_s) * 1e6 / e2e_0ms["objects"], 1
        ),
        "pull_fixed_cost_cpu_s": fixed_s,
    }


def cpu_section(rounds: Sequence[dict[str, float]], figures: dict[str, Any]) -> dict[str, Any]:
    """The `cpu_us_per_object` section: the spread of each round's figures, and the rest."""
    return {
        **merge_numbers(rounds),
        "end_to_end_0ms_concurrency_8": figures["ours_end_to_end_0ms_concurrency_8"][
            "cpu_us_per_object"
        ]["puller"],
        "end_to_end_0ms_all_processes": figures["ours_end_to_end_0ms"]["cpu_us_per_object"],
        "how": (
            "µs of user+system CPU per object of the puller alone. end_to_end: the `ocpi-puller "
            "pull` process (default settings unless named), tokens at 0 / 50 ms, start-up "
            "included (less_fixed_cost: less a pull of nothing, pull_fixed_cost_cpu_s); "
            "fetch_only: this bench process across its own fetch path (plan, fetch, parse, "
            "validate, key; no Kafka; 8 requests in flight)"
        ),
        "target": "end_to_end_0ms <= 8",
    }


def cpu_budget(e2e_0ms: dict[str, Any]) -> dict[str, Any]:
    """The rate at which every CPU of this machine would be busy with the pull at 0 ms.

    Puller, sandbox and broker share the CPUs: this bounds every end-to-end figure here,
    whatever the client does.
    """
    cpu_us = sum(e2e_0ms["cpu_us_per_object"].values())
    return {
        "cpu_us_per_object_all_processes": round(cpu_us, 1),
        "objects_per_s_with_every_cpu_busy": round((os.cpu_count() or 1) * 1e6 / cpu_us),
    }


# -- the `cpu` section: puller CPU per token and per location, side by side with a baseline ----

CPU_TOKENS = 300_000
CPU_LOCATIONS = 30_000


def _per_object(figure: dict[str, Any], fixed_s: float) -> tuple[float, float]:
    """µs of puller CPU per object, and the same less a pull of nothing."""
    objects = max(1, figure["objects"])
    cpu_s = figure["cpu_s"]["puller"]
    return round(cpu_s * 1e6 / objects, 2), round((cpu_s - fixed_s) * 1e6 / objects, 2)


def cpu_pulls_round(
    codes: dict[str, Path | None], tokens: int = CPU_TOKENS, locations: int = CPU_LOCATIONS
) -> dict[str, float]:
    """One round of `ocpi-puller pull` at 0 ms by each code (ours: None; a baseline's source
    tree), every pull on a fresh broker, the codes interleaved: puller CPU per token and per
    location (OCPI 2.3.0, the sandbox's highest), and ratios."""
    round_figures: dict[str, float] = {}
    fixed: dict[str, float] = {}
    with sandbox_process(0, 0) as empty:
        for name, code in codes.items():
            with fresh_broker() as broker:
                fixed[name] = run_pull(empty, broker, code=code)["cpu_s"]["puller"]
            round_figures[f"{name}.pull_fixed_cost_cpu_s"] = fixed[name]
    for module, count in (("tokens", tokens), ("locations", locations)):
        served = (count, 0) if module == "tokens" else (0, count)
        with sandbox_process(served[0], 0, locations=served[1]) as partner:
            for name, code in codes.items():
                with fresh_broker() as broker:
                    figure = run_pull(partner, broker, module=module, code=code)
                raw, less_fixed = _per_object(figure, fixed[name])
                round_figures[f"{name}.{module}_us_per_object"] = raw
                round_figures[f"{name}.{module}_us_per_object_less_fixed_cost"] = less_fixed
    if "baseline" in codes:
        for module in ("tokens", "locations"):
            for measure in ("us_per_object", "us_per_object_less_fixed_cost"):
                ours = round_figures[f"ours.{module}_{measure}"]
                base = round_figures[f"baseline.{module}_{measure}"]
                round_figures[f"ratio.{module}_{measure}"] = round(ours / base, 3)
    return round_figures


def cpu_pulls_section(rounds: Sequence[dict[str, float]], baseline: str | None) -> dict[str, Any]:
    """The `cpu` section: every figure's spread over the rounds (median, min, max, runs)."""
    return {
        "tokens": CPU_TOKENS,
        "locations": CPU_LOCATIONS,
        "baseline": baseline,
        **merge_numbers(rounds),
        "how": (
            "user+system CPU of the `ocpi-puller pull` process per object at 0 ms, default "
            "settings, a fresh broker per pull; less_fixed_cost: less the CPU of a pull of "
            "nothing; with --baseline, the same pulls by that commit's code, interleaved with "
            "ours in each round (ratio = ours / baseline, per round)"
        ),
    }
