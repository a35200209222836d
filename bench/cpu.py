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
from typing import Any

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
