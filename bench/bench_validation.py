"""Benchmark page validation: ``python bench/bench_validation.py``.

Prints one JSON document with the objects/s of ``PageValidator.validate`` for realistic OCPI
2.2.1 tokens and locations (pages of 1000 objects, best of 5 runs per module), of a plain
per-object ``Model.model_validate_json`` loop over the same bytes as a reference, and of one
``validate_json`` call over the whole page (the variant PageValidator avoids). Not run by the
tests.
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
import pydantic
from pydantic import TypeAdapter

from schemas.ocpi import model_for
from schemas.validation import PageValidator

PAGE_SIZE = 1000
RUNS = 5
VERSION = "2.2.1"


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


def best_rate(run: Callable[[], object], count: int) -> float:
    """Objects per second of the fastest of ``RUNS`` runs."""
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def bench_module(
    module: str, make: Callable[[random.Random, int], dict[str, Any]]
) -> dict[str, Any]:
    """Measure one module: page validation and the per-object reference."""
    rng = random.Random(42)
    page = [orjson.dumps(make(rng, i)) for i in range(PAGE_SIZE)]
    validator = PageValidator(VERSION, module)
    model = model_for(VERSION, module)
    assert validator.validate(page) == [], "benchmark objects must be valid"

    whole_page = TypeAdapter(list[model])  # type: ignore[valid-type]
    joined = b"[" + b",".join(page) + b"]"

    def per_object() -> None:
        for raw in page:
            model.model_validate_json(raw)

    parsed = [orjson.loads(raw) for raw in page]
    return {
        "page_size": PAGE_SIZE,
        "mean_object_bytes": round(sum(map(len, page)) / PAGE_SIZE),
        # What the puller runs: the page's objects as orjson parsed them (python mode, strict).
        "validate_items_objects_per_s": round(
            best_rate(lambda: validator.validate_items(parsed), PAGE_SIZE)
        ),
        "page_validate_objects_per_s": round(
            best_rate(lambda: validator.validate(page), PAGE_SIZE)
        ),
        "model_validate_json_objects_per_s": round(best_rate(per_object, PAGE_SIZE)),
        # For comparison only: the whole page in one call (what PageValidator chunks instead).
        "single_call_objects_per_s": round(
            best_rate(lambda: whole_page.validate_json(joined), PAGE_SIZE)
        ),
    }


def measure() -> dict[str, Any]:
    """Every figure of this benchmark."""
    return {
        "version": VERSION,
        "runs": RUNS,
        "python": platform.python_version(),
        "pydantic": pydantic.VERSION,
        "modules": {
            "tokens": bench_module("tokens", make_token),
            "locations": bench_module("locations", make_location),
        },
    }


def main() -> None:
    """Run the benchmark and print one JSON document."""
    print(json.dumps(measure(), indent=2))


if __name__ == "__main__":
    main()
