"""How many page requests one partner gets in flight: a pure controller fed one answer at a time.

No clock, no asyncio: every call passes `now` (monotonic seconds); the only randomness is the
injected `random.Random` (probe jitter), so a trace is a function of its inputs. The asyncio shell
whose permits follow `permits` is `producer/ocpi/http/limiter.py`.

The limit is a float in [min_limit, max_limit]; `permits` is its floor. Decisions are per window,
never per answer: a window holds answers to requests sent since the last change, and closes after
`window_min_responses` of them and max(`window_min_s`, 2 × mean latency) (in slow start, 0.5 s)
— or at once on a hard signal, so a refusal is answered within one round trip:

* 429 or timeout (or a second 503/reset in the window; a lone one is as often a proxy hiccup)
  from a request sent after the last cut: cut ×`backoff`, once; answers to requests sent before
  the cut are ignored (TCP's one reaction per loss event). In slow start the cut lands no lower
  than the last step that drew nothing, or 0.75 × the count refused. A 429 at the very in-flight
  count refused last time is a wall that has not moved (a partner capping requests in flight):
  step just below it. After any refusal, growth creeps towards the refused count (+0.2 a window,
  slower when refused there again — CUBIC's plateau). `Retry-After` moves the next window past
  the pause: the `RequestGate` holds the requests, the controller stops learning meanwhile.
* app-limited (the window's peak in flight below limit/2): hold. An idle client learns nothing.
* otherwise r = median over full pages of latency / the baseline of their endpoint:
  - gradient (default): r ≤ `tolerance` → +1; above, × (1 − smoothing·(1 − clamp(tol/r, .5, 1)))
    (Gradient2's gradient without its min-RTT bias; Envoy's 25% buffer as the dead band).
  - vegas: queue q = limit·(1 − 1/r); +1 below 3u, −u above 6u, u = max(1, log10 limit).
  - aimd: +1, no latency brake.
  Slow start (until the first brake or cut) grows ×(1 + headroom): ×2 at r = 1, ×1 at r = 1.125.

Latency baseline, per endpoint: not the minimum (biased low, sheds too much) nor a plain EWMA (our
own queueing drifts it up). The first is a window's median; from fewer than 10 answers it is
provisional, replaced by the next window's (a partner jittering by ±50% makes the median of 4 a
third off, and a baseline too low brakes every later window). A window median lowers it quickly
(α 0.3); it rises only from low-load windows: the first, app-limited ones, the one after a cut,
and probes — permits halved for one window every `probe_every_windows` × U(0.5, 1) windows, and
at once when the brake alone has halved the limit (our queue, or a partner slower for good?). A
probe's median is taken as the baseline, so a partner that got 3× slower dips for a few seconds
instead of pinning the limit at 1.

Why gradient, with tolerance 1.25 and a start at 2: the simulation sweep in
docs/adaptive-concurrency.md (`python bench/adaptive_sim.py`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import median
from typing import Literal

Outcome = Literal["ok", "throttled", "unavailable", "timeout", "reset"]
Rule = Literal["gradient", "vegas", "aimd"]

HARD_OUTCOMES: frozenset[Outcome] = frozenset({"throttled", "unavailable", "timeout", "reset"})
STRAY_OUTCOMES: frozenset[Outcome] = frozenset({"unavailable", "reset"})


@dataclass(frozen=True, slots=True)
class Response:
    """What one answered request tells the controller."""

    latency_s: float
    inflight: int  # requests in flight when it was sent, itself included
    outcome: Outcome = "ok"
    full_page: bool = True  # a short (last) page is faster and says nothing about load
    retry_after_s: float | None = None  # from a 429's Retry-After, already parsed
    endpoint: str = ""  # latency baselines are kept per endpoint


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """Tuning of the controller; the defaults are the measured choice (module docstring)."""

    rule: Rule = "gradient"
    initial_limit: float = 2.0
    min_limit: float = 1.0
    max_limit: float = 32.0
    window_min_responses: int = 10
    window_min_s: float = 1.0
    window_round_trips: float = 2.0
    slow_start_window_min_s: float = 0.5
    slow_start_min_responses: int = 10
    tolerance: float = 1.25
    smoothing: float = 0.5
    backoff: float = 0.5
    slow_start: bool = True
    slow_start_exit: float = 1.125  # latency ratio that ends slow start (HyStart's 1/8)
    probe_every_windows: int = 30  # 0: probe only when the brake has halved the limit
    ceiling_step: float = 0.2
    first_baseline_samples: int = 10  # fewer in its window: the first baseline is provisional
    errors_to_cut: int = 2  # 503s/resets in one window that make a cut (429/timeout: one)
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("need 1 <= min_limit <= initial_limit <= max_limit")
        if not 0.0 < self.backoff < 1.0 or not 0.0 < self.smoothing <= 1.0:
            raise ValueError("backoff must be in (0, 1) and smoothing in (0, 1]")
        if self.tolerance < 1.0 or self.slow_start_exit <= 1.0:
            raise ValueError("need tolerance >= 1 and slow_start_exit > 1")
        counts = (
            self.window_min_responses,
            self.slow_start_min_responses,
            self.first_baseline_samples,
        )
        if min(counts) < 1:
            raise ValueError("window and baseline sample counts must be >= 1")

    @classmethod
    def fixed(cls, limit: int) -> ControllerConfig:
        """A constant limit (`--concurrency N`): same interface, nothing ever changes it."""
        return cls(initial_limit=limit, min_limit=limit, max_limit=limit, probe_every_windows=0)


@dataclass(frozen=True, slots=True)
class LimitChange:
    """One change of the limit or of the permits, with the reason to log."""

    at: float
    previous_limit: float
    limit: float
    previous_permits: int
    permits: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConcurrencySummary:
    """Permits over the run, for progress events and the pull summary."""

    initial: int
    minimum: int
    maximum: int
    final: int
    changes: int
    cuts: int


@dataclass(slots=True)
class _Window:
    """Answers gathered since the window opened (mutable scratch, never leaves the module)."""

    opened_at: float
    responses: int = 0
    latency_sum: float = 0.0
    max_inflight: int = 0
    errors: int = 0  # 503s and resets not yet acted on
    latencies: dict[str, list[float]] = field(default_factory=dict)


class ConcurrencyController:
    """The limit of requests in flight to one partner, decided per window from its answers."""

    def __init__(self, config: ControllerConfig | None = None, rng: random.Random | None = None):
        self.config = config or ControllerConfig()
        self._rng = rng or random.Random(0)
        self._limit = float(self.config.initial_limit)
        self._slow_start = self.config.slow_start
        self._last_cut = -math.inf
        self._epoch = -math.inf  # answers to requests sent before it are about an older limit
        self._window = _Window(opened_at=-math.inf)
        self._low_load_next = True  # the first window runs at the (low) initial limit
        self._probing = False
        self._windows_to_probe = self._draw_probe_interval()
        self._baselines: dict[str, float] = {}
        self._provisional: set[str] = set()  # endpoints whose baseline came from a small window
        self._ceiling = math.inf  # in-flight count the partner last refused at
        self._ceiling_step = self.config.ceiling_step
        self._before_last_step = self.config.min_limit  # slow start's last limit without trouble
        self._brake_started_at = self._limit  # the limit before the latency brake took over
        initial = self.permits
        self._summary = ConcurrencySummary(initial, initial, initial, initial, 0, 0)

    # -- what the shell and the reports read ------------------------------------------------------

    @property
    def limit(self) -> float:
        """The current limit (a float; the shell uses `permits`)."""
        return self._limit

    @property
    def permits(self) -> int:
        """Whole requests allowed in flight now (halved during a probe window)."""
        target = self._limit * 0.5 if self._probing else self._limit
        return max(1, math.floor(target))

    @property
    def slow_start(self) -> bool:
        """Still growing multiplicatively (no brake or cut seen yet)."""
        return self._slow_start

    def baseline(self, endpoint: str = "") -> float | None:
        """The learnt no-load latency of an endpoint's full pages (None until measured)."""
        return self._baselines.get(endpoint)

    def summary(self) -> ConcurrencySummary:
        """`concurrency_min/max/final` and counts over the run so far."""
        return self._summary

    # -- what the shell feeds ---------------------------------------------------------------------

    def on_response(self, now: float, response: Response) -> LimitChange | None:
        """Take one answer; return the change it caused, if any.

        `now` is when the answer arrived; the request was sent at `now - latency_s`.
        """
        sent_at = now - response.latency_s
        if response.outcome in HARD_OUTCOMES:
            if sent_at < self._last_cut:
                if response.outcome == "throttled":  # no new cut, but where the wall stands
                    self._ceiling = min(self._ceiling, max(1, response.inflight))
                return None  # a reaction to the load before the last cut: already answered
            if response.outcome in STRAY_OUTCOMES:
                # A lone 503 or reset is as often a proxy hiccup or a keep-alive race as load;
                # a second one before the window closes is a pattern.
                self._window.errors += 1
                if self._window.errors < self.config.errors_to_cut:
                    return None
            return self._cut(now, response)
        if sent_at < self._epoch:
            return None
        window = self._window
        if window.opened_at == -math.inf:
            window.opened_at = max(sent_at, self._epoch)
        window.responses += 1
        window.latency_sum += response.latency_s
        window.max_inflight = max(window.max_inflight, response.inflight)
        if response.full_page:
            window.latencies.setdefault(response.endpoint, []).append(response.latency_s)
        if not self._window_ready(now):
            return None
        return self._close_window(now)

    # -- decisions --------------------------------------------------------------------------------

    def _window_ready(self, now: float) -> bool:
        window, config = self._window, self.config
        if self._slow_start:
            least, floor = config.slow_start_min_responses, config.slow_start_window_min_s
        else:
            least, floor = config.window_min_responses, config.window_min_s
        if window.responses < least:
            return False
        mean_latency = window.latency_sum / window.responses
        span = max(floor, config.window_round_trips * mean_latency)
        return now - window.opened_at >= span

    def _cut(self, now: float, response: Response) -> LimitChange | None:
        refused_at = min(max(1, response.inflight), self.permits)
        wanted = self._limit * self.config.backoff
        if self._slow_start:
            # Slow start overshot, by up to 2×: the partner's limit lies between the last step
            # that drew nothing and the in-flight count refused. Land between, not below both.
            wanted = max(wanted, self._before_last_step, 0.75 * refused_at)
        elif response.outcome == "throttled" and refused_at >= self._ceiling:
            # Refused again where it was refused last time: a wall that has not moved (a partner
            # capping requests in flight), not a collapse. Step just below it.
            wanted = max(wanted, refused_at - 1)
        self._slow_start = False
        self._last_cut = now
        self._epoch = now
        # Refused again at or below the last refusal: approach that level more slowly each time.
        repeated = refused_at <= self._ceiling < math.inf
        # (Halved at most twice, so a partner that recovered is passed within ~20 windows.)
        step = self.config.ceiling_step
        self._ceiling_step = max(step / 4, self._ceiling_step / 2) if repeated else step
        self._ceiling = refused_at
        if response.outcome == "throttled" and response.retry_after_s is not None:
            # Nothing is sent before the pause ends: learn from what is sent after it.
            pause = min(max(0.0, response.retry_after_s), self.config.max_retry_after_s)
            self._epoch = now + pause
        self._reset_window(opened_at=self._epoch)
        self._low_load_next = True
        label = {"throttled": "429", "unavailable": "503"}.get(response.outcome, response.outcome)
        return self._set(now, wanted, f"{label}: ×{wanted / self._limit:.2f}", cut=True)

    def _close_window(self, now: float) -> LimitChange | None:
        window = self._window
        app_limited = window.max_inflight < self._limit / 2
        probe = self._probing
        low_load = probe or app_limited or self._low_load_next
        self._learn_baselines(window, low_load=low_load, trusted=probe)
        ratio = self._median_ratio(window)
        self._low_load_next = False
        self._reset_window(opened_at=now)
        if probe:
            self._epoch = now
            return self._set(now, self._limit, "probe over: permits restored")
        if app_limited:
            return None  # a client that does not use its limit learns nothing about it
        if window.max_inflight >= self._ceiling:
            self._ceiling = math.inf  # passed the level refused last time without a refusal
        self._windows_to_probe -= 1
        # The brake alone has halved the limit: our queue, or a partner slower for good? Ask now.
        halved = self._limit < 0.5 * self._brake_started_at
        adjustable = self.config.min_limit < self.config.max_limit
        if (self._windows_to_probe <= 0 or halved) and adjustable and not self._slow_start:
            self._brake_started_at = self._limit
            self._windows_to_probe = self._draw_probe_interval()
            self._epoch = now
            reason = "probe: half the permits to re-measure latency"
            return self._set(now, self._limit, reason, probing=True)
        return self._grow_or_brake(now, ratio, window.max_inflight)

    def _grow_or_brake(
        self, now: float, ratio: float | None, max_inflight: int
    ) -> LimitChange | None:
        config = self.config
        limit = self._limit
        shown = "n/a" if ratio is None else f"{ratio:.2f}"
        exit_at = config.slow_start_exit
        if self._slow_start and (ratio is None or ratio <= exit_at):
            headroom = 1.0 if ratio is None else (exit_at - ratio) / (exit_at - 1)
            factor = 1.0 + min(1.0, max(0.0, headroom))
            grown = max(limit + 1, min(limit * factor, 2.0 * max_inflight))
            if limit < config.max_limit:
                self._before_last_step = limit
            return self._set(now, grown, f"slow start: latency ×{shown} of baseline")
        self._slow_start = False
        grown = self._add_one(limit)
        if ratio is None or config.rule == "aimd":
            return self._set(now, grown, f"additive: latency ×{shown}")
        if config.rule == "vegas":
            unit = max(1.0, math.log10(limit))
            queue = limit * (1 - 1 / ratio)
            if queue < 3 * unit:
                return self._set(now, grown, f"vegas: queue {queue:.1f} < {3 * unit:.1f}")
            if queue > 6 * unit:
                return self._set(now, limit - unit, f"vegas: queue {queue:.1f} > {6 * unit:.1f}")
            return self._set(now, limit, f"vegas: queue {queue:.1f} in band")
        if ratio <= config.tolerance:
            return self._set(now, grown, f"latency ×{shown} of baseline")
        gradient = min(1.0, max(0.5, config.tolerance / ratio))
        braked = limit * (1 - config.smoothing * (1 - gradient))
        return self._set(now, braked, f"latency ×{shown} of baseline: brake ×{gradient:.2f}")

    def _add_one(self, limit: float) -> float:
        if math.floor(limit + 1) >= self._ceiling:
            # The next permit would reach the level refused last time: creep up on it (CUBIC's
            # plateau) rather than stepping into another refusal every few windows.
            return max(limit + self._ceiling_step, min(limit + 1, self._ceiling - 1))
        return limit + 1

    def _set(
        self, now: float, wanted: float, reason: str, *, cut: bool = False, probing: bool = False
    ) -> LimitChange | None:
        """Apply a decision (every decision also starts or ends a probe); None if nothing moved."""
        config = self.config
        previous_limit, previous_permits = self._limit, self.permits
        self._probing = probing
        self._limit = min(config.max_limit, max(config.min_limit, wanted))
        permits = self.permits
        if self._limit == previous_limit and permits == previous_permits:
            return None
        if self._limit != previous_limit:
            self._epoch = max(self._epoch, now)
        if cut or self._limit > self._brake_started_at:
            self._brake_started_at = self._limit
        s = self._summary
        self._summary = ConcurrencySummary(
            initial=s.initial,
            minimum=min(s.minimum, permits),
            maximum=max(s.maximum, permits),
            final=permits,
            changes=s.changes + (permits != previous_permits),
            cuts=s.cuts + cut,
        )
        return LimitChange(now, previous_limit, self._limit, previous_permits, permits, reason)

    # -- latency baseline -------------------------------------------------------------------------

    def _learn_baselines(self, window: _Window, *, low_load: bool, trusted: bool) -> None:
        for endpoint, latencies in window.latencies.items():
            if len(latencies) < 3:
                continue
            middle = median(latencies)
            known = self._baselines.get(endpoint)
            if known is None or endpoint in self._provisional:
                # Latency may jitter by ±50%: a window that starts a module's pages after
                # planning may hold only a few of them, and their median be a third off. A
                # baseline from fewer than `first_baseline_samples` answers is provisional:
                # the next window's median replaces it, until one holds enough.
                self._baselines[endpoint] = middle
                if len(latencies) < self.config.first_baseline_samples:
                    self._provisional.add(endpoint)
                else:
                    self._provisional.discard(endpoint)
                continue
            if trusted:
                self._baselines[endpoint] = middle  # a probe sees the partner without our queue
            elif low_load:
                self._baselines[endpoint] = (known + middle) / 2
            elif middle < known:
                # Faster than the baseline: believe it quickly (the median damps single outliers).
                self._baselines[endpoint] = known + 0.3 * (middle - known)

    def _median_ratio(self, window: _Window) -> float | None:
        ratios = [
            latency / self._baselines[endpoint]
            for endpoint, latencies in window.latencies.items()
            if self._baselines.get(endpoint, 0.0) > 0.0
            for latency in latencies
        ]
        return median(ratios) if ratios else None

    # -- scratch ----------------------------------------------------------------------------------

    def _reset_window(self, opened_at: float = -math.inf) -> None:
        self._window = _Window(opened_at=opened_at)

    def _draw_probe_interval(self) -> int:
        every = self.config.probe_every_windows
        if every <= 0:
            return 2**62
        return max(2, round(every * self._rng.uniform(0.5, 1.0)))
