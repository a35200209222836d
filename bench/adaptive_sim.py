"""A discrete-event partner in virtual time, to measure the concurrency controller against.

Pure and deterministic: no clock, no asyncio; every random draw comes from one seeded
`random.Random`. The client is closed-loop with an endless backlog of pages: it sends whenever
it holds a permit and the partner's `Retry-After` pause (what `RequestGate.pause` does) is over.
A 429 is the controller's to answer; the gate only pauses for `Retry-After`.

The client may spend CPU on each answer (`Scenario.client_cpu_s`: parsing, reading, records) on
its one event loop: it takes an answer up when the loop is free, and sends again once it is. A
latency sample ends when the answer is taken up (`latency_ends="answer"`, what the puller does:
its own work is not the partner's latency), or after the client's work on it (`"processed"`, how
it used to be), which makes a CPU-bound client look like a slow partner.

Two partner models:

* `latency`: capacity C; latency = base·(1 + max(0, inflight − 0.7C)/C) × noise, and 429 with
  `Retry-After` once more than 1.3C requests are in flight. C may change over time (a schedule of
  (time, C) points, linear in between), for ramps and recoveries.
* `workers`: K workers serve one request each in base × noise; up to Q wait in a FIFO queue
  (latency grows with load); more than Q waiting → 429 with `Retry-After` (the sandbox's
  `--capacity-workers K --capacity-queue Q`).

`python bench/adaptive_sim.py` sweeps C ∈ 2..30 and base ∈ 0.05–2 s for every rule and both
models, and runs the issue's two pulls (K=12 and K=2 workers at 200 ms, queues 0 to K); it prints
JSON: per scenario the settled limit, throughput / capacity and the share of 429s, per rule and
model an aggregate, per pull the medians over seeds. `--set FIELD=VALUE` overrides the
controller's config (`--set tolerance=1.5 --set backoff=0.7`); about a minute on one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import itertools
import json
import math
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from producer.ocpi.http.concurrency import (
    ConcurrencyController,
    ControllerConfig,
    LimitChange,
    Outcome,
    Response,
    Rule,
)

ModelKind = Literal["latency", "workers"]


@dataclass(frozen=True, slots=True)
class Partner:
    """A fake partner's capacity and manners."""

    kind: ModelKind
    capacity: int  # C for `latency`, K workers for `workers`
    base_s: float
    queue: int = 0  # Q, `workers` only
    noise: float = 0.1  # sigma of the log-normal latency factor
    retry_after_s: float = 1.0
    short_page_share: float = 0.0  # short pages come back in half the time
    schedule: tuple[tuple[float, float], ...] = ()  # (time, C) points, `latency` only
    slower_from_s: float = math.inf  # from then on every answer takes `slower_by` times longer
    slower_by: float = 1.0

    def capacity_at(self, now: float) -> float:
        """C at a moment: the schedule interpolated linearly, else the fixed capacity."""
        points = self.schedule
        if not points or now <= points[0][0]:
            return float(points[0][1]) if points else float(self.capacity)
        for (t0, c0), (t1, c1) in itertools.pairwise(points):
            if now <= t1:
                return c0 + (c1 - c0) * (now - t0) / (t1 - t0) if t1 > t0 else c1
        return float(points[-1][1])

    def pace(self, now: float) -> float:
        """Base latency at a moment (a partner may get slower for good)."""
        return self.base_s * (self.slower_by if now >= self.slower_from_s else 1.0)

    def best_rate(self) -> float:
        """Full pages per second at the best concurrency that draws no 429."""
        c = float(self.capacity)
        if self.kind == "workers":
            return c / self.base_s
        most = max(1, math.floor(1.3 * c))
        return most / (self.base_s * (1 + max(0.0, most - 0.7 * c) / c))


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated run."""

    partner: Partner
    config: ControllerConfig = field(default_factory=ControllerConfig)
    seed: int = 1
    duration_s: float = 0.0  # 0: `windows` windows of the partner's pace
    warmup_s: float = 0.0  # 0: the first 30% of the run
    windows: int = 200
    pages: int = 0  # 0: an endless backlog; else a pull of this many pages
    client_cpu_s: float = 0.0  # the client's own work per answer, on its one event loop
    latency_ends: Literal["answer", "processed"] = "answer"

    def span(self) -> tuple[float, float]:
        """(duration, warm-up) in virtual seconds."""
        window = max(self.config.window_min_s, 2.5 * self.partner.base_s)
        duration = self.duration_s or self.windows * window
        return duration, self.warmup_s or 0.3 * duration


@dataclass(frozen=True, slots=True)
class Answer:
    """One answered request, as the client saw it."""

    sent_at: float
    at: float
    inflight: int
    outcome: Outcome
    full_page: bool


@dataclass(slots=True)
class Trace:
    """Everything a run produced (mutable while it runs)."""

    answers: list[Answer] = field(default_factory=list)
    changes: list[LimitChange] = field(default_factory=list)
    permits: list[tuple[float, int]] = field(default_factory=list)  # (time, permits) on change
    sent_while_gated: int = 0
    finished_at: float | None = None  # when the last of `Scenario.pages` was answered
    baseline_s: float | None = None  # the latency baseline the controller ended with


@dataclass(slots=True)
class _Request:
    sent_at: float
    inflight: int
    full_page: bool
    refused: bool = False


class _Run:
    """One run's mutable state: the client's permits and gate, the partner's workers, events."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.partner = scenario.partner
        self.rng = random.Random(scenario.seed)
        self.controller = ConcurrencyController(scenario.config, random.Random(scenario.seed + 1))
        self.trace = Trace(permits=[(0.0, self.controller.permits)])
        self.events: list[tuple[float, int, str, int]] = []  # (time, tie-break, kind, request)
        self.requests: dict[int, _Request] = {}
        self.ids = 0  # events pushed: ties in time keep their order
        self.sent = 0
        self.inflight = 0
        self.backlog = scenario.pages or math.inf  # pages not yet sent (a 429 puts one back)
        self.done = 0
        self.gate_until = 0.0
        self.gate_wake = -1.0
        self.cpu_free = 0.0  # when the client's event loop is done with what it has taken up
        self.cpu_wake = -1.0
        self.busy = 0  # `workers`: serving now
        self.queue: deque[int] = deque()  # `workers`: waiting, first come first served

    def push(self, at: float, kind: str, request: int) -> None:
        self.ids += 1
        heapq.heappush(self.events, (at, self.ids, kind, request))

    def noise(self) -> float:
        return self.rng.lognormvariate(0.0, self.partner.noise)

    def serve(self, now: float, request: int) -> None:
        self.busy += 1
        cost = 1.0 if self.requests[request].full_page else 0.5  # a short page is cheaper
        self.push(now + self.partner.pace(now) * cost * self.noise(), "answer", request)

    def refuse(self, now: float, request: int) -> None:
        self.requests[request].refused = True
        self.push(now + 0.1 * self.partner.base_s * self.noise(), "answer", request)

    def send(self, now: float) -> None:
        if now < self.gate_until:
            self.trace.sent_while_gated += 1
        partner = self.partner
        self.inflight += 1
        self.backlog -= 1
        self.sent += 1
        request = self.sent
        full = self.rng.random() >= partner.short_page_share
        self.requests[request] = _Request(now, self.inflight, full)
        if partner.kind == "latency":
            c = partner.capacity_at(now)
            if self.inflight > 1.3 * c:
                self.refuse(now, request)
                return
            slow = (1 + max(0.0, self.inflight - 0.7 * c) / c) * (1.0 if full else 0.5)
            self.push(now + partner.pace(now) * slow * self.noise(), "answer", request)
        elif self.busy < partner.capacity:
            self.serve(now, request)
        elif len(self.queue) < partner.queue:
            self.queue.append(request)
        else:
            self.refuse(now, request)

    def pump(self, now: float) -> None:
        if now < self.cpu_free:  # the event loop is busy: it sends once it is free
            if self.cpu_wake != self.cpu_free:
                self.cpu_wake = self.cpu_free
                self.push(self.cpu_free, "cpu", 0)
            return
        if now < self.gate_until:
            if self.gate_wake != self.gate_until:  # the RequestGate holds every request
                self.gate_wake = self.gate_until
                self.push(self.gate_until, "gate", 0)
            return
        while self.inflight < self.controller.permits and self.backlog > 0:
            self.send(now)

    def answer(self, arrived: float, request_id: int) -> None:
        # The event loop takes the answer up when it is free, then works on it.
        now = max(arrived, self.cpu_free)
        self.cpu_free = now + self.scenario.client_cpu_s
        sample_end = now if self.scenario.latency_ends == "answer" else self.cpu_free
        request = self.requests.pop(request_id)
        if not request.refused and self.partner.kind == "workers":
            self.busy -= 1
            if self.queue:
                self.serve(now, self.queue.popleft())
        self.inflight -= 1
        outcome: Outcome = "throttled" if request.refused else "ok"
        if request.refused:
            self.gate_until = max(self.gate_until, now + self.partner.retry_after_s)
            self.backlog += 1  # the page is retried after the pause
        else:
            self.done += 1
        response = Response(
            latency_s=sample_end - request.sent_at,
            inflight=request.inflight,
            outcome=outcome,
            full_page=request.full_page,
            retry_after_s=self.partner.retry_after_s if request.refused else None,
        )
        trace = self.trace
        answer = Answer(request.sent_at, now, request.inflight, outcome, request.full_page)
        trace.answers.append(answer)
        before = self.controller.permits
        change = self.controller.on_response(now, response)
        if change is not None:
            trace.changes.append(change)
        if self.controller.permits != before:
            trace.permits.append((now, self.controller.permits))

    def run(self) -> Trace:
        duration, _ = self.scenario.span()
        self.pump(0.0)
        while self.events:
            now, _, kind, request = heapq.heappop(self.events)
            if now > duration:
                break
            if kind == "answer":
                self.answer(now, request)
                if self.scenario.pages and self.done >= self.scenario.pages:
                    self.trace.finished_at = now
                    break
            self.pump(now)
        self.trace.baseline_s = self.controller.baseline()
        return self.trace


def simulate(scenario: Scenario) -> Trace:
    """Run one scenario to its end (its duration, or its last page) in virtual time."""
    return _Run(scenario).run()


def median_permits(trace: Trace, start: float, end: float) -> float:
    """Time-weighted median of the permits in [start, end)."""
    spans: dict[int, float] = {}
    points = [*trace.permits, (end, trace.permits[-1][1])]
    for (t0, permits), (t1, _) in itertools.pairwise(points):
        lo, hi = max(t0, start), min(t1, end)
        if hi > lo:
            spans[permits] = spans.get(permits, 0.0) + (hi - lo)
    total = sum(spans.values())
    running = 0.0
    for permits in sorted(spans):
        running += spans[permits]
        if running >= total / 2:
            return float(permits)
    return float(trace.permits[-1][1])


@dataclass(frozen=True, slots=True)
class Settled:
    """What a run settled on, after warm-up, against what the partner could take."""

    capacity: int
    base_s: float
    median_permits: float
    limit_per_capacity: float
    throughput_per_capacity: float
    throttled_share: float  # 429s among all answers of the run, warm-up included
    throttled_share_settled: float  # after warm-up


def settle(scenario: Scenario, trace: Trace) -> Settled:
    """Summarise one run."""
    duration, warmup = scenario.span()
    partner = scenario.partner
    settled = [a for a in trace.answers if a.at >= warmup]
    ok = sum(1 for a in settled if a.outcome == "ok")
    throttled_all = sum(1 for a in trace.answers if a.outcome == "throttled")
    throttled_settled = sum(1 for a in settled if a.outcome == "throttled")
    permits = median_permits(trace, warmup, duration)
    return Settled(
        capacity=partner.capacity,
        base_s=partner.base_s,
        median_permits=permits,
        limit_per_capacity=round(permits / partner.capacity, 3),
        throughput_per_capacity=round(ok / (duration - warmup) / partner.best_rate(), 3),
        throttled_share=round(throttled_all / max(1, len(trace.answers)), 4),
        throttled_share_settled=round(throttled_settled / max(1, len(settled)), 4),
    )


CAPACITIES = (2, 3, 4, 6, 8, 12, 16, 20, 25, 30)
BASES = (0.05, 0.2, 0.5, 2.0)


def sweep(
    rule: Rule,
    kind: ModelKind,
    *,
    capacities: Sequence[int] = CAPACITIES,
    bases: Sequence[float] = BASES,
    queue_share: float = 0.5,
    noise: float = 0.1,
    short_page_share: float = 0.0,
    config: ControllerConfig | None = None,
    seed: int = 1,
    windows: int = 200,
) -> list[Settled]:
    """Every (C, base) of one partner model under one rule."""
    base_config = dataclasses.replace(config or ControllerConfig(), rule=rule)
    results = []
    for capacity in capacities:
        for base in bases:
            queue = math.ceil(queue_share * capacity)
            partner = Partner(
                kind, capacity, base, queue=queue, noise=noise, short_page_share=short_page_share
            )
            scenario = Scenario(partner, base_config, seed=seed, windows=windows)
            results.append(settle(scenario, simulate(scenario)))
    return results


def aggregate(results: list[Settled]) -> dict[str, Any]:
    """One line per sweep: the band the limit settled in, throughput and 429s."""
    in_band = [0.6 <= r.limit_per_capacity <= 1.5 for r in results]
    throughput = [r.throughput_per_capacity for r in results]
    throttled = [r.throttled_share for r in results]
    return {
        "limit_per_capacity": [
            min(r.limit_per_capacity for r in results),
            max(r.limit_per_capacity for r in results),
        ],
        "in_band_0.6_to_1.5": f"{sum(in_band)}/{len(results)}",
        "throughput_per_capacity": {
            "min": min(throughput),
            "median": statistics.median(throughput),
        },
        "throttled_share": {"median": statistics.median(throttled), "max": max(throttled)},
    }


@dataclass(frozen=True, slots=True)
class PullResult:
    """A finite pull: how close to the partner's capacity it finished, warm-up included."""

    workers: int
    queue: int
    base_s: float
    pages: int
    seconds: float
    throughput_per_capacity: float
    throttled_share: float
    median_permits: float


def pull(partner: Partner, pages: int, config: ControllerConfig, seed: int = 1) -> PullResult:
    """Pull `pages` pages from a partner (a `make bench` adaptive target, minus the I/O)."""
    scenario = Scenario(partner, config, seed=seed, duration_s=1e9, pages=pages)
    trace = simulate(scenario)
    seconds = trace.finished_at or math.inf
    throttled = sum(1 for a in trace.answers if a.outcome == "throttled")
    return PullResult(
        workers=partner.capacity,
        queue=partner.queue,
        base_s=partner.base_s,
        pages=pages,
        seconds=round(seconds, 2),
        throughput_per_capacity=round(pages / partner.best_rate() / seconds, 3),
        throttled_share=round(throttled / len(trace.answers), 4),
        median_permits=median_permits(trace, 0.0, seconds),
    )


# The issue's targets: 400k tokens at K=12 and 100k at K=2, 500 objects a page, 200 ms a page.
ISSUE_PULLS = ((12, 800), (2, 200))


def issue_pulls(config: ControllerConfig, seeds: int, noise: float) -> list[dict[str, Any]]:
    """The issue's two pulls for queues of 0, K/4, K/2 and K: medians over `seeds` runs."""
    rows = []
    for workers, pages in ISSUE_PULLS:
        for queue in sorted({0, math.ceil(workers / 4), math.ceil(workers / 2), workers}):
            partner = Partner("workers", workers, 0.2, queue=queue, noise=noise)
            runs = [pull(partner, pages, config, seed) for seed in range(1, seeds + 1)]
            rows.append(
                {
                    "workers": workers,
                    "queue": queue,
                    "pages": pages,
                    "throughput_per_capacity": statistics.median(
                        r.throughput_per_capacity for r in runs
                    ),
                    "throttled_share": statistics.median(r.throttled_share for r in runs),
                    "throttled_share_max": max(r.throttled_share for r in runs),
                    "median_permits": statistics.median(r.median_permits for r in runs),
                }
            )
    return rows


RULES: dict[str, Rule] = {"gradient": "gradient", "vegas": "vegas", "aimd": "aimd"}
MODELS: dict[str, ModelKind] = {"latency": "latency", "workers": "workers"}


def _config(settings: list[str]) -> ControllerConfig:
    kinds = {f.name: str(f.type) for f in dataclasses.fields(ControllerConfig)}
    parsers: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": "true".__eq__}
    try:
        pairs = [setting.split("=", 1) for setting in settings]
        overrides = {name: parsers.get(kinds[name], str)(text) for name, text in pairs}
    except (KeyError, ValueError) as error:
        raise SystemExit(f"--set FIELD=VALUE with a ControllerConfig field: {error}") from None
    return dataclasses.replace(ControllerConfig(), **overrides)


def main(argv: list[str] | None = None) -> None:
    """Print JSON: per rule and model the sweep (aggregate and scenarios), per rule the pulls."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--queue-share", type=float, default=0.5, help="Q as a share of K")
    parser.add_argument("--windows", type=int, default=200, help="length of each sweep run")
    parser.add_argument("--noise", type=float, default=0.1, help="sigma of log-normal latency")
    parser.add_argument("--short-share", type=float, default=0.0, help="share of short pages")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pull-seeds", type=int, default=5)
    parser.add_argument("--summary-only", action="store_true", help="leave out the scenarios")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a ControllerConfig field (repeatable)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = _config(args.set)
    report: dict[str, Any] = {"config": dataclasses.asdict(config), "sweep": {}, "pulls": {}}
    for rule in (RULES[name] for name in args.rules.split(",")):
        for kind in (MODELS[name] for name in args.models.split(",")):
            results = sweep(
                rule,
                kind,
                queue_share=args.queue_share,
                noise=args.noise,
                short_page_share=args.short_share,
                seed=args.seed,
                windows=args.windows,
                config=config,
            )
            entry: dict[str, Any] = {"aggregate": aggregate(results)}
            if not args.summary_only:
                entry["scenarios"] = [dataclasses.asdict(r) for r in results]
            report["sweep"][f"{rule}/{kind}"] = entry
        ruled = dataclasses.replace(config, rule=rule)
        report["pulls"][rule] = issue_pulls(ruled, args.pull_seeds, args.noise)
    report["seconds"] = round(time.perf_counter() - started, 1)
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
