"""The processes a benchmark runs: the sandbox partner, a fresh embedded broker, `ocpi-puller
pull`; and what each of them costs (wall time, CPU per object, RSS).

Every figure that writes to Kafka gets a fresh broker (the broker's cost grows with what it
stores); the sandbox is a separate process, as a partner is, so its CPU is its own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psutil

from sandbox.broker import BrokerProcess, start_broker

TOKEN = "bench-token"
AUTH = {"Authorization": "Token " + base64.b64encode(TOKEN.encode()).decode()}
TOKENS_PATH = "/ocpi/emsp/2.2.1/tokens"
# How often a watched pull's partner counters are read (`PullWatch`).
WATCH_EVERY_S = 0.25


@dataclass(frozen=True)
class Partner:
    """The sandbox process: its base URL and pid (to account its CPU)."""

    url: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU a running process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def own_cpu_seconds() -> float:
    """User + system CPU this process (all its threads) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def sandbox_process(
    tokens: int,
    latency_ms: float,
    *,
    max_limit: int = 1000,
    flags: Sequence[str] = (),
    locations: int = 0,
) -> Iterator[Partner]:
    """The sandbox as a separate process serving `tokens` tokens (and `locations` locations)."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "producer.cli", "sandbox", "--port", "0",
            "--tokens", str(tokens), "--max-limit", str(max_limit),
            "--latency-ms", str(latency_ms), "--token-value", TOKEN,
            "--locations", str(locations), "--tariffs", "0", "--sessions", "0", "--cdrs", "0",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        yield Partner(line.split(" at ", 1)[1].split("/ocpi/versions", 1)[0], process.pid)
    finally:
        process.terminate()
        process.wait(10)


def partner_stats(partner: Partner) -> dict[str, Any]:
    """The sandbox's `/_sandbox/stats` (request and status counters, its capacity block)."""
    with urllib.request.urlopen(f"{partner.url}/_sandbox/stats", timeout=5) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


@contextlib.contextmanager
def fresh_broker() -> Iterator[BrokerProcess]:
    """A new embedded broker on an empty data directory."""
    with tempfile.TemporaryDirectory(prefix="ocpi-bench-kafka-") as data:
        broker = start_broker(Path(data))
        try:
            yield broker
        finally:
            broker.stop()


@cache
class PullWatch:
    """The partner's counters read while a pull runs, to see where its wall time goes.

    Phases (to `WATCH_EVERY_S`): `start` until the partner sees its first list request
    (process start, imports, Kafka connect, version discovery), `planning` until whole pages
    flow (the `limit=1` count probes serve one object each), `fetching` until the partner has
    served its last object, and `finishing` until the process exits (last acks, checkpoints,
    summary).
    """

    def __init__(self, partner: Partner) -> None:
        self.partner = partner
        self.samples: list[tuple[float, int, int]] = []  # (s since start, requests, objects)
        self.polls = 0  # answered `/_sandbox/stats` requests: the sandbox counts their 200s
        self._next = 0.0

    def sample(self, elapsed: float) -> None:
        """Read the partner's counters if it is time to."""
        if elapsed < self._next:
            return
        self._next = elapsed + WATCH_EVERY_S
        with contextlib.suppress(OSError, ValueError):
            stats = partner_stats(self.partner)
            self.polls += 1
            requests = sum(stats["requests"].values())
            self.samples.append((elapsed, requests, stats["objects_served"]))

    def phases(self, seconds: float) -> dict[str, Any]:
        """Seconds per phase, and the objects/s while whole pages flowed."""
        first_request = next((t for t, r, _ in self.samples if r > 0), None)
        # Pages flow once objects outrun requests: a probe serves one object, a page hundreds.
        flowing = next(((t, o) for t, r, o in self.samples if o > 2 * r + 10), None)
        if first_request is None or flowing is None:
            return {"note": "too short to watch"}
        # The last object served: the first sample at the final count (to the resolution).
        last = self.samples[-1][2]
        served = next(t for t, _, o in self.samples if o >= last)
        fetching = max(served - flowing[0], 1e-9)
        return {
            "start_s": round(first_request, 2),
            "planning_s": round(flowing[0] - first_request, 2),
            "fetching_s": round(fetching, 2),
            "finishing_s": round(seconds - served, 2),
            "objects_per_s_while_fetching": round((last - flowing[1]) / fetching),
            "resolution_s": WATCH_EVERY_S,
        }


def run_pull(
    partner: Partner,
    broker: BrokerProcess,
    *flags: str,
    watch: bool = False,
    check: bool = True,
    module: str = "tokens",
    code: Path | None = None,
) -> dict[str, Any]:
    """`ocpi-puller pull` of the tokens (or `module`) as a process, with its default settings
    plus `flags`; `code`: run the puller of that source tree (a baseline's) instead of ours.

    Returns wall time, peak and median RSS, its JSON summary's counts and concurrency, and the
    CPU time (µs per object) the puller, the sandbox and the broker each spent on it. `watch`
    adds `phases` (`PullWatch`); with `check` a failed pull raises, else it is reported.
    """
    command = [
        sys.executable, "-m", "producer.cli", "pull",
        "--url", f"{partner.url}/ocpi/versions", "--module", module,
        "--bootstrap-servers", broker.bootstrap, "--output", "json", "--log-level", "ERROR",
        *flags,
    ]  # fmt: skip
    watcher = PullWatch(partner) if watch else None
    sandbox_cpu = cpu_seconds(partner.pid)
    broker_cpu = cpu_seconds(broker.process.pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "OCPI_PULLER_TOKEN": TOKEN}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    process = psutil.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=code,
    )
    samples: list[int] = []
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            samples.append(process.memory_info().rss)
        if watcher is not None:
            watcher.sample(time.perf_counter() - started)
        time.sleep(0.05)
    peak = max(samples, default=0)
    elapsed = time.perf_counter() - started
    out, err = process.communicate()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    puller_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    sandbox_cpu = cpu_seconds(partner.pid) - sandbox_cpu
    broker_cpu = cpu_seconds(broker.process.pid) - broker_cpu
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if (process.returncode != 0 and check) or not lines:
        raise RuntimeError(f"pull failed ({process.returncode}): {err.decode()[-800:]}")
    summary = json.loads(lines[-1])
    objects = summary["objects_emitted"]
    cpu = {"puller": puller_cpu, "sandbox": sandbox_cpu, "broker": broker_cpu}
    figure: dict[str, Any] = {
        "flags": " ".join(flags) or "defaults",
        "objects": objects,
        "seconds": round(elapsed, 2),
        "objects_per_s": round(objects / elapsed),
        "peak_rss_mb": round(peak / 2**20, 1),
        # The peak is one 50 ms sample (a burst of unacknowledged pages); the median is the
        # steady state over the whole pull.
        "median_rss_mb": round(statistics.median(samples or [0]) / 2**20, 1),
        "complete": summary["complete"],
        "windows": summary["windows"],
        "pages": summary["pages"],
        "retries": summary["retries"],
        "concurrency": {
            "min": summary.get("concurrency_min"),
            "max": summary.get("concurrency_max"),
            "final": summary.get("concurrency_final"),
        },
        "cpu_us_per_object": {
            name: round(cpu * 1e6 / max(1, objects), 1) for name, cpu in cpu.items()
        },
        "cpu_s": {name: round(cpu_s, 2) for name, cpu_s in cpu.items()},
    }
    if process.returncode != 0:
        figure["exit_code"] = process.returncode
        figure["error"] = summary.get("error")
    if watcher is not None:
        figure["phases"] = watcher.phases(elapsed)
        figure["sandbox_stats_polls"] = watcher.polls
    return figure


def rate(objects: int, seconds: float, **more: Any) -> dict[str, Any]:
    """A figure: objects, seconds and objects/s."""
    return {
        "objects": objects,
        "seconds": round(seconds, 2),
        "objects_per_s": round(objects / seconds),
        **more,
    }
