"""Repeated runs (`--repeat N`): the median with its min and max, and the run that stands for them.

This machine is shared and noisy (one day gave the puller 15.8 and 35.6 µs/object), so every
figure a target names is measured in each of N rounds. A figure keeps its single-run shape: the
run whose headline measure is the median stands for it, and `spread` adds, per measure, the
median, min, max and every run in round order.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Figure = dict[str, Any]


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of repeated measurements, and each of them in round order."""
    return {
        "median": _round(statistics.median(values)),
        "min": _round(min(values)),
        "max": _round(max(values)),
        "runs": [_round(v) for v in values],
    }


def lookup(document: Mapping[str, Any], path: str) -> Any:
    """What a dotted path (`cpu_us_per_object.puller`) leads to, or None if nothing does. A key
    may hold dots itself (a `spread` by measure path, `ours.tokens_us_per_object`): the longest
    key that matches is taken."""
    value: Any = document
    parts = path.split(".")
    while parts:
        if not isinstance(value, Mapping):
            return None
        for length in range(len(parts), 0, -1):
            key = ".".join(parts[:length])
            if key in value:
                value, parts = value[key], parts[length:]
                break
        else:
            return None
    return value


def measure(figure: Mapping[str, Any], path: str) -> float:
    """A number inside a figure by its dotted path (it must be there)."""
    value = lookup(figure, path)
    if value is None:
        raise KeyError(path)
    return float(value)


def median_run(runs: Sequence[Figure], key: Callable[[Figure], float]) -> Figure:
    """The run whose `key` is the median (the lower middle one of an even count)."""
    ordered = sorted(runs, key=key)
    return ordered[(len(ordered) - 1) // 2]


def merge_figure(runs: Sequence[Figure], paths: Sequence[str]) -> Figure:
    """One figure from its runs: the median run of `paths[0]`, plus `spread` of every path.

    Parts only the first round measures (`produce_ceiling.per_message_send`) are kept from it.
    """
    chosen = {**runs[0], **median_run(runs, lambda run: measure(run, paths[0]))}
    chosen["spread"] = {path: spread([measure(run, path) for run in runs]) for path in paths}
    return chosen


def merge_rounds(
    rounds: Sequence[Mapping[str, Figure]], measures: Mapping[str, Sequence[str]]
) -> dict[str, Figure]:
    """Figures by name from rounds of figures by name, in first-seen order.

    A figure named in `measures` is merged (`merge_figure`) however many rounds measured it,
    so its shape does not depend on N; any other figure is the first round's.
    """
    merged: dict[str, Figure] = {}
    for name in dict.fromkeys(name for one in rounds for name in one):
        runs = [one[name] for one in rounds if name in one]
        merged[name] = merge_figure(runs, measures[name]) if name in measures else runs[0]
    return merged


def merge_numbers(rounds: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """`spread` of each number by name over the rounds that have it (ratios of one round)."""
    names = dict.fromkeys(name for one in rounds for name in one)
    return {name: spread([one[name] for one in rounds if name in one]) for name in names}


def _round(value: float) -> float:
    if float(value).is_integer():
        return int(value)
    return round(value, 4) if abs(value) < 10 else round(value, 1)
