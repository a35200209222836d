"""`instructions`: instructions per object of the puller's in-process hot path (callgrind).

The hot path is what a pull does with each page between the partner's bytes and Kafka's batches,
with no network: the envelope parsed, every object validated and keyed, its record built, the
window's selection, the partition chosen and the record appended to the producer's batch, and
the batches closed (lz4, CRC) as the sender does before it sends them. Pages of 1,000 objects
shaped like the sandbox's (2.2.1, `sandbox.generator`), at the pull's defaults (lenient
validation, at-least-once, no `--skip-unchanged`).

Counted with `valgrind --tool=callgrind` as the difference of two runs of `--drive`: a warm-up
page only, and the warm-up page plus the measured pages, so imports and first-call costs cancel
out (PYTHONHASHSEED is fixed, OpenBLAS has one thread: the counts repeat within 1%). Also timed
natively: µs per object of the measured pages, the median of 3 runs with min and max.
`--baseline REF` runs the same measurement on git commit REF's code (a temporary worktree) side
by side, its runs interleaved with ours. Needs valgrind on the PATH; without it the section says so.

    python bench/instructions.py [--baseline REF]                     # the section's JSON
    python bench/instructions.py --drive PAGES_FILE --module tokens --pages N   # one run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE_SIZE = 1000
COUNTS = {"tokens": 20_000, "locations": 2_000}
VERSION = "2.2.1"
TIMED_RUNS = 3
# Issue 26's "today": this section on main's code when that work began (instructions per object;
# 9.7 and 72 µs per object then). Its target: tokens at most half of it.
AT_ISSUE_26_START = {"tokens": 83_723, "locations": 257_436}
_COLLECTED = re.compile(r"Collected\s*:\s*([0-9]+)")


def page_bodies(module: str, count: int) -> list[bytes]:
    """A warm-up page and `count` objects' pages, each as the sandbox sends it."""
    from sandbox.generator import ObjectFactory, Party
    from sandbox.protocol import envelope

    factory = ObjectFactory(module, 1, Party())  # type: ignore[arg-type]
    bodies = []
    for first in range(0, count + PAGE_SIZE, PAGE_SIZE):
        objects = [
            factory.render(i, VERSION, 1_600_000_000_000 + i * 1000)
            for i in range(first, first + PAGE_SIZE)
        ]
        bodies.append(envelope(objects, timestamp="2026-12-04T00:00:00Z"))
    return bodies


# -- one run (--drive): this checkout's hot path over the pages of a file -----------------------


async def drive(bodies: list[bytes], module: str) -> float:
    """The hot path over every page; seconds spent on all but the first (warm-up) page."""
    from aiokafka import AIOKafkaProducer
    from yarl import URL

    from producer.kafka.output import KafkaOutput
    from producer.ocpi.paging.reader import PageReader
    from producer.ocpi.protocol.envelope import parse_list_envelope
    from producer.ocpi.protocol.responses import read_pagination
    from producer.pull.records import MessageBuilder
    from producer.pull.selection import WindowSelection

    endpoint = URL(f"https://partner.example/ocpi/cpo/{VERSION}/{module}")
    reader = PageReader(VERSION, module, None)
    builder = MessageBuilder(partner="bench", module=module, ocpi_version=VERSION, pull_id="bench")
    selection = WindowSelection(None, datetime(2030, 1, 1, tzinfo=UTC))
    kafka = KafkaOutput("localhost:9", partitions=6)
    # Batches are built, never sent: a producer that is never started, six partitions.
    kafka.producers._producer = AIOKafkaProducer(**kafka.producer_options())
    topic = f"bench.{module}"
    kafka._partition_counts = {topic: 6, "bench.deadletter": 6}
    acks = []
    started = 0.0
    for number, body in enumerate(bodies):
        if number == 1:
            started = time.perf_counter()
        offset = (number - 1) * PAGE_SIZE
        url = endpoint.with_query(offset=offset, limit=PAGE_SIZE)
        envelope = parse_list_envelope(body)
        read_pagination(url, endpoint, total="1000000", limit=str(PAGE_SIZE), links=[])
        read = reader.read(envelope.items, envelope.text)  # as the window pull reads a page
        messages = builder.build(read, offset, str(url), None, 0)
        selection.listed(messages)  # as the window pull's ledger does, on fetch
        messages = selection.select(messages)
        acks.append(await kafka.send(topic, messages.objects))
        acks.append(await kafka.send("bench.deadletter", messages.dead_letters))
    for outbox in kafka._outboxes.values():
        outbox._seal()
        for batch in outbox._sealed:
            batch.builder._build()  # what the sender does before sending: lz4 and the CRC
    seconds = time.perf_counter() - started if len(bodies) > 1 else 0.0
    kafka.producers.producer._closed = True  # never started: nothing to close
    for ack in acks:
        ack.cancel()
    tasks = [outbox._task for outbox in kafka._outboxes.values()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*acks, *tasks, return_exceptions=True)
    return seconds


def drive_main(path: str, module: str, pages: int) -> None:
    """`--drive`: the first `pages` pages of the file; prints the seconds of all but the first."""
    from producer.run import tune_garbage_collector

    with open(path, "rb") as file:
        bodies = pickle.load(file)[:pages]
    tune_garbage_collector()  # as a pull does
    print(json.dumps({"seconds": asyncio.run(drive(bodies, module))}))


# -- the section -------------------------------------------------------------------------------


def _run(code: Path, args: list[str], valgrind: list[str] | None = None) -> str:
    command = [*(valgrind or []), sys.executable, str(code / "bench" / "instructions.py"), *args]
    # One OpenBLAS thread: its idle threads spin under valgrind (which runs threads one at a
    # time) and would count as the hot path's; nothing here uses BLAS.
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": str(code),
        "OPENBLAS_NUM_THREADS": "1",
    }
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-6:])} failed: {done.stderr[-1500:]}")
    return done.stdout


def count_instructions(code: Path, pages_file: str, module: str, pages: int) -> int:
    """Instructions callgrind counts for a run over the first `pages` pages."""
    with tempfile.TemporaryDirectory(prefix="ocpi-callgrind-") as scratch:
        log = Path(scratch) / "log"
        valgrind = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
            f"--log-file={log}",
        ]  # fmt: skip
        _run(code, ["--drive", pages_file, "--module", module, "--pages", str(pages)], valgrind)
        found = _COLLECTED.search(log.read_text())
    if found is None:
        raise RuntimeError(f"callgrind reported no instruction count for {module}")
    return int(found.group(1))


def timed_us(code: Path, pages_file: str, module: str, pages: int, objects: int) -> float:
    """µs per object of the measured pages in one native run."""
    out = _run(code, ["--drive", pages_file, "--module", module, "--pages", str(pages)])
    return float(json.loads(out.splitlines()[-1])["seconds"]) * 1e6 / objects


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """Commit `ref` of this repository in a temporary worktree."""
    with tempfile.TemporaryDirectory(prefix="ocpi-baseline-") as scratch:
        where = Path(scratch) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(where), ref],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        try:
            yield where
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(where)],
                cwd=ROOT, check=False, capture_output=True,
            )  # fmt: skip


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "runs": [round(v, 3) for v in values],
    }


def measure(codes: dict[str, Path]) -> dict[str, Any]:
    """Per module, for each code (this checkout, a baseline): instructions and µs per object."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ocpi-pages-") as scratch:
        for module, objects in COUNTS.items():
            pages_file = str(Path(scratch) / f"{module}.pickle")
            with open(pages_file, "wb") as file:
                pickle.dump(page_bodies(module, objects), file)
            pages = 1 + objects // PAGE_SIZE
            entry: dict[str, Any] = {"objects": objects}
            for name, code in codes.items():
                warm = count_instructions(code, pages_file, module, 1)
                full = count_instructions(code, pages_file, module, pages)
                entry[name] = {"instructions_per_object": round((full - warm) / objects)}
            counted = entry["ours"]["instructions_per_object"] / AT_ISSUE_26_START[module]
            # Shaped as a repeated figure (`repeats.spread`) for bench/targets.py.
            entry["vs_issue_26_start"] = _spread([counted])
            runs: dict[str, list[float]] = {name: [] for name in codes}
            for _ in range(TIMED_RUNS):  # interleaved: every code sees the same machine state
                for name, code in codes.items():
                    runs[name].append(timed_us(code, pages_file, module, pages, objects))
            for name in codes:
                entry[name]["us_per_object"] = _spread(runs[name])
            if "baseline" in codes:
                ours, base = entry["ours"], entry["baseline"]
                entry["ratio_instructions_vs_baseline"] = round(
                    ours["instructions_per_object"] / base["instructions_per_object"], 3
                )
                entry["ratio_us_vs_baseline"] = round(
                    ours["us_per_object"]["median"] / base["us_per_object"]["median"], 3
                )
            figures[module] = entry
    return figures


def instructions_section(baseline: str | None = None) -> dict[str, Any]:
    """The `instructions` section of `make bench` (see the module docstring)."""
    how = (
        "instructions per object of the in-process hot path (envelope bytes -> records in the "
        "producer's batches, batches closed; no network), valgrind --tool=callgrind, the "
        "difference of a run over a warm-up page and one over it plus the measured pages; "
        f"us_per_object: the same pages timed natively, median of {TIMED_RUNS} runs"
    )
    if shutil.which("valgrind") is None:
        return {"not_measured": "valgrind is not installed (apt-get install valgrind)", "how": how}
    with contextlib.ExitStack() as stack:
        codes = {"ours": ROOT}
        if baseline is not None:
            codes["baseline"] = stack.enter_context(checkout(baseline))
        figures = measure(codes)
    return {"version": VERSION, "page_size": PAGE_SIZE, "baseline": baseline, **figures, "how": how}


def main() -> None:
    parser = argparse.ArgumentParser(description="instructions per object of the hot path")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure this commit's code")
    parser.add_argument("--drive", metavar="PAGES_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--module", default="tokens", help=argparse.SUPPRESS)
    parser.add_argument("--pages", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive_main(args.drive, args.module, args.pages)
        return
    print(json.dumps(instructions_section(args.baseline), indent=2))


if __name__ == "__main__":
    main()
