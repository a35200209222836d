"""Benchmark page validation: ``python bench/bench_validation.py [--baseline GIT_REF]``.

Prints one JSON document with the objects/s of ``PageValidator`` for realistic OCPI 2.2.1 tokens
and locations (pages of 1000 objects, best of ``--runs`` runs, 5 by default), in both modes:

* a canonical page (what almost every partner sends): strict and lenient must cost the same,
  since lenient runs the same strict check first and finds nothing to look at again;
* a dialect page: every timestamp written ``2024-03-04 03:00:00+00:00`` (the issue's open-source
  server): strict dead-letters every object, lenient reads every object again.

With ``--baseline REF`` the ``schemas/validation.py`` of that git commit is loaded next to the
current one and measured on the same pages in the same run, its runs interleaved with ours, so the
before/after figures share one machine state. Also printed: a plain per-object
``Model.model_validate_json`` loop and one ``validate_json`` call over the whole page (the variant
``PageValidator`` avoids), and the DateTime readings of ``schemas.datetimes``. Not run by tests.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pydantic
from pydantic import TypeAdapter

from schemas.datetimes import epoch_seconds, parse_datetime
from schemas.ocpi import model_for
from schemas.validation import PageValidator

PAGE_SIZE = 1000
RUNS = 5
VERSION = "2.2.1"
DIALECT_TIMESTAMP = "2024-03-04 03:00:00+00:00"


def make_token(rng: random.Random, index: int) -> dict[str, Any]:
    """A 2.2.1 Token shaped like the spec's full RFID example."""
    month, day, minute = rng.randint(1, 9), rng.randint(10, 28), rng.randint(10, 59)
    token: dict[str, Any] = {
        "country_code": rng.choice(["NL", "DE", "BE", "FR"]),
        "party_id": rng.choice(["TNM", "EMS", "ABC"]),
        "uid": f"{rng.getrandbits(56):014X}",
        "type": rng.choice(["RFID", "RFID", "RFID", "APP_USER"]),
        "contract_id": f"NL-TNM-C{index:08d}-X",
        "visual_number": f"DF000-2001-{index % 10000:04d}",
        "issuer": "TheNewMotion",
        "valid": rng.random() > 0.05,
        "whitelist": rng.choice(["ALLOWED", "ALWAYS", "NEVER"]),
        "last_updated": f"2024-0{month}-{day}T12:{minute}:09Z",
    }
    if rng.random() < 0.3:
        token["group_id"] = f"GRP{index % 100:05d}"
        token["language"] = "nl"
    return token


def make_connector(rng: random.Random, number: int) -> dict[str, Any]:
    """A 2.2.1 Connector."""
    dc = rng.random() < 0.3
    return {
        "id": str(number),
        "standard": "IEC_62196_T2_COMBO" if dc else "IEC_62196_T2",
        "format": "CABLE" if dc else "SOCKET",
        "power_type": "DC" if dc else "AC_3_PHASE",
        "max_voltage": 920 if dc else 230,
        "max_amperage": 200 if dc else 32,
        "max_electric_power": 150000 if dc else 22000,
        "tariff_ids": [f"TARIFF-{rng.randint(1, 20)}"],
        "last_updated": "2024-03-07T02:21:22Z",
    }


def make_location(rng: random.Random, index: int) -> dict[str, Any]:
    """A 2.2.1 Location with 1-4 EVSEs of 1-2 connectors, opening hours and an operator."""
    evses = []
    for number in range(rng.randint(1, 4)):
        evses.append(
            {
                "uid": f"{index}-{number}",
                "evse_id": f"NL*TNM*E{index:07d}{number}",
                "status": rng.choice(["AVAILABLE", "CHARGING", "OUTOFORDER"]),
                "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
                "connectors": [make_connector(rng, c + 1) for c in range(rng.randint(1, 2))],
                "physical_reference": str(number + 1),
                "floor_level": "-1",
                "last_updated": "2024-03-07T02:21:22Z",
            }
        )
    return {
        "country_code": "NL",
        "party_id": "TNM",
        "id": f"LOC{index:08d}",
        "publish": True,
        "name": f"Parking garage {index}",
        "address": f"Stationsplein {index % 300}",
        "city": "Amsterdam",
        "postal_code": "1012 AB",
        "country": "NLD",
        "coordinates": {
            "latitude": f"52.{rng.randint(0, 999999):06d}",
            "longitude": f"4.{rng.randint(0, 999999):06d}",
        },
        "parking_type": "PARKING_GARAGE",
        "evses": evses,
        "operator": {"name": "The Operator", "website": "https://operator.example.com"},
        "facilities": ["TRAIN_STATION"],
        "time_zone": "Europe/Amsterdam",
        "opening_times": {
            "twentyfourseven": False,
            "regular_hours": [
                {"weekday": day, "period_begin": "07:00", "period_end": "22:00"}
                for day in range(1, 8)
            ],
        },
        "charging_when_closed": True,
        "energy_mix": {"is_green_energy": True},
        "last_updated": "2024-03-07T02:21:22Z",
    }


def in_dialect(value: Any) -> Any:
    """``value`` with every ``last_updated`` written as the issue's open-source server does."""
    if isinstance(value, dict):
        return {
            k: DIALECT_TIMESTAMP if k == "last_updated" else in_dialect(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [in_dialect(v) for v in value]
    return value


def best_rates(runs: dict[str, Callable[[], object]], count: int, repeat: int) -> dict[str, int]:
    """Objects per second of the fastest of ``repeat`` runs of each, the runs interleaved so that
    every variant sees the same machine state (the shared cores' load, the CPU clock)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            # The same heap for every variant: else whoever runs after the most garbage pays
            # for its full collection (Locations: +-50%).
            gc.collect()
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: round(count / seconds) for name, seconds in best.items()}


def load_baseline(ref: str) -> types.ModuleType:
    """``schemas/validation.py`` as it was at git ``ref``, as a module of its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{ref}:schemas/validation.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("baseline_validation")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:schemas/validation.py", "exec"), module.__dict__)
    return module


def bench_module(
    module: str, make: Callable[[random.Random, int], dict[str, Any]], baseline: Any, repeat: int
) -> dict[str, Any]:
    """Measure one module: both modes on a canonical and a dialect page, and the references."""
    rng = random.Random(42)
    parsed = [make(rng, i) for i in range(PAGE_SIZE)]
    page = [orjson.dumps(obj) for obj in parsed]
    dialect = [in_dialect(obj) for obj in parsed]
    strict = PageValidator(VERSION, module, "strict")
    lenient = PageValidator(VERSION, module, "lenient")
    model = model_for(VERSION, module)
    assert lenient.validate_items(parsed) == [], "benchmark objects must be valid"
    assert len(strict.validate_items(dialect)) == PAGE_SIZE
    assert lenient.check_items(dialect).invalid == []

    canonical_runs: dict[str, Callable[[], object]] = {
        "strict": lambda: strict.check_items(parsed),
        "lenient": lambda: lenient.check_items(parsed),
    }
    dialect_runs: dict[str, Callable[[], object]] = {
        "strict": lambda: strict.check_items(dialect),
        "lenient": lambda: lenient.check_items(dialect),
    }
    if baseline is not None:
        before = baseline.PageValidator(VERSION, module)
        assert before.validate_items(parsed) == []
        canonical_runs = {"before": lambda: before.validate_items(parsed), **canonical_runs}
        dialect_runs = {"before": lambda: before.validate_items(dialect), **dialect_runs}

    whole_page = TypeAdapter(list[model])  # type: ignore[valid-type]
    joined = b"[" + b",".join(page) + b"]"

    def per_object() -> None:
        for raw in page:
            model.model_validate_json(raw)

    references = best_rates(
        {
            "page_validate": lambda: lenient.validate(page),
            "model_validate_json": per_object,
            "single_call": lambda: whole_page.validate_json(joined),
        },
        PAGE_SIZE,
        repeat,
    )
    canonical = best_rates(canonical_runs, PAGE_SIZE, repeat)
    return {
        "page_size": PAGE_SIZE,
        "mean_object_bytes": round(sum(map(len, page)) / PAGE_SIZE),
        # What the puller runs (orjson-parsed objects, python mode), per mode and page kind.
        "canonical_page_objects_per_s": canonical,
        "dialect_page_objects_per_s": best_rates(dialect_runs, PAGE_SIZE, repeat),
        # The names this document had before the modes existed (lenient, the default).
        "validate_items_objects_per_s": canonical["lenient"],
        "page_validate_objects_per_s": references["page_validate"],
        "model_validate_json_objects_per_s": references["model_validate_json"],
        # For comparison only: the whole page in one call (what PageValidator chunks instead).
        "single_call_objects_per_s": references["single_call"],
    }


def bench_datetimes(repeat: int) -> dict[str, int]:
    """Readings of ``last_updated`` per second: the canonical fast path and a dialect."""
    canonical = [f"2024-03-{d:02d}T12:{m:02d}:09Z" for d in range(1, 29) for m in range(60)]
    dialect = [t.replace("T", " ").replace("Z", "+00:00") for t in canonical]
    low, high = "2024-03-05T00:00:00Z", "2024-03-20T00:00:00Z"
    count = len(canonical)
    return best_rates(
        {
            "text_comparison": lambda: [low <= t < high for t in canonical],
            "epoch_seconds_canonical": lambda: [epoch_seconds(t) for t in canonical],
            "epoch_seconds_dialect": lambda: [epoch_seconds(t) for t in dialect],
            "parse_datetime_dialect": lambda: [parse_datetime(t) for t in dialect],
        },
        count,
        repeat,
    )


# The cycle collector's thresholds during a pull (producer/run.py): validation allocates a
# model tree per object, and the default thresholds would time the collector as much as it.
PULL_GC_THRESHOLD = (50_000, 20, 100)


def measure(baseline_ref: str | None = None, repeat: int = RUNS) -> dict[str, Any]:
    """Every figure of this benchmark; ``baseline_ref`` adds the "before" of that commit."""
    baseline = None if baseline_ref is None else load_baseline(baseline_ref)
    previous = gc.get_threshold()
    gc.set_threshold(*PULL_GC_THRESHOLD)
    try:
        modules = {
            "tokens": bench_module("tokens", make_token, baseline, repeat),
            "locations": bench_module("locations", make_location, baseline, repeat),
        }
        datetimes = bench_datetimes(repeat)
    finally:
        gc.set_threshold(*previous)
    return {
        "version": VERSION,
        "runs": repeat,
        "python": platform.python_version(),
        "pydantic": pydantic.VERSION,
        "baseline": baseline_ref,
        "gc_threshold": PULL_GC_THRESHOLD,
        "modules": modules,
        "datetimes_per_s": datetimes,
    }


def main() -> None:
    """Run the benchmark and print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure this commit's")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (best counts)")
    args = parser.parse_args()
    print(json.dumps(measure(args.baseline, args.runs), indent=2))


if __name__ == "__main__":
    main()
