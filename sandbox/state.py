"""What one running sandbox holds: its datasets, one-shot page links, fault stream and counters."""

from __future__ import annotations

import random
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from sandbox.capacity import CapacityGate
from sandbox.config import SandboxConfig
from sandbox.dataset import Dataset, DatasetSpec
from sandbox.dialects import DialectWriter
from sandbox.generator import MODULES, Module
from sandbox.protocol import (
    ROUTING_HEADERS,
    TRACE_HEADERS,
    check_authorization,
    check_request_headers,
    now_ms,
)


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A list request as the partner understood it."""

    module: Module
    version: str
    offset: int
    limit: int
    date_from: str | None
    date_to: str | None
    date_from_ms: int | None
    date_to_ms: int | None
    requested_limit: int  # before the server's cap: what `echo-limit` puts into X-Limit


class SandboxStats:
    """Request counters, readable over HTTP (`/_sandbox/stats`) and from Python."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.objects_served = 0
        self.objects_served_by_module: Counter[str] = Counter()
        self.pages_served = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.page_request_times: deque[float] = deque(maxlen=200_000)
        self.authorization_headers: Counter[str] = Counter()
        # Which 2.2+ request headers arrived, per OCPI version: version -> header -> requests.
        self.request_headers: dict[str, Counter[str]] = {}

    def max_requests_per_second(self) -> int:
        """The most page requests seen in any sliding one-second interval."""
        times = list(self.page_request_times)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def as_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able values."""
        return {
            "requests": dict(self.requests),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "faults": dict(self.faults),
            "objects_served": self.objects_served,
            "objects_served_by_module": dict(self.objects_served_by_module),
            "pages_served": self.pages_served,
            "max_in_flight": self.max_in_flight,
            "max_requests_per_second": self.max_requests_per_second(),
            "request_headers": {v: dict(c) for v, c in self.request_headers.items()},
        }


class SandboxState:
    """Datasets, one-shot page links, the fault stream and counters of one running sandbox."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.datasets: dict[str, Dataset] = {
            module: Dataset(
                DatasetSpec(
                    module=module,
                    size=config.sizes.get(module, 0),
                    seed=config.seed,
                    party=config.party,
                    history_start_ms=config.history_start_ms,
                    spacing_ms=config.spacing_ms,
                    invalid_rate=config.invalid_rate,
                    order=config.order,
                )
            )
            for module in MODULES
        }
        for dataset in self.datasets.values():
            if dataset.history_end_ms >= now_ms():
                raise ValueError(
                    f"{dataset.spec.module}: {dataset.spec.size} objects at {config.spacing_ms} ms "
                    "spacing reach into the future; lower --spacing-ms"
                )
        self.fault_rng = random.Random(config.seed)
        self.mutation_rng = random.Random(config.seed + 1)
        self.order_rng = random.Random(config.seed + 2)  # `--unordered`: each request's order
        self.mutation_credit: dict[str, float] = {}
        self.one_shot: OrderedDict[str, PageQuery] = OrderedDict()
        self._recent_requests: deque[float] = deque()
        self.stats = SandboxStats()
        self._dialect_writers: dict[tuple[str, str], DialectWriter] = {}
        self.capacity: CapacityGate | None = None
        if config.capacity_workers is not None:
            self.capacity = CapacityGate(config.capacity_workers, config.capacity_queue)

    def authorize(
        self, request: web.Request, version: str | None, *, functional: bool = True
    ) -> None:
        """Check a request as the partner does before serving it: token, then 2.2+ headers.

        Raises 401 unless the Authorization form is accepted, and with `require_headers` 400
        for a missing or wrong X-Request-ID, X-Correlation-ID or routing header. Counts what
        arrived either way (`/_sandbox/stats`).
        """
        headers = request.headers
        header = headers.get("Authorization", "")
        self.stats.authorization_headers[header[:6]] += 1
        if version is not None:
            seen = self.stats.request_headers.setdefault(version, Counter())
            seen["requests"] += 1
            for name in (*TRACE_HEADERS, *ROUTING_HEADERS):
                if name in headers:
                    seen[name] += 1
        config = self.config
        check_authorization(header, config.token_value, config.token_encoding, version)
        if config.require_headers:
            check_request_headers(headers, version, config.party, functional=functional)

    def over_rate_limit(self, now: float) -> bool:
        """Whether this request exceeds the partner's own rate limit (requests in the last s)."""
        limit = self.config.rate_limit
        if limit is None:
            return False
        recent = self._recent_requests
        recent.append(now)
        while recent and now - recent[0] > 1.0:
            recent.popleft()
        return len(recent) > limit

    def rate_limit_headers(self, now: float) -> dict[str, str]:
        """The rate limit as a rate-limited API advertises it: per second, what is left of it."""
        limit = self.config.rate_limit
        assert limit is not None
        used = sum(1 for at in self._recent_requests if now - at <= 1.0)
        return {
            "X-RateLimit-Limit": f"{limit:g}",
            "X-RateLimit-Remaining": str(max(0, int(limit) - used)),
            "X-RateLimit-Reset": "1",
            "RateLimit-Policy": f"{limit:g};w=1",
        }

    def now_ms(self) -> int:
        """The partner's clock (`clock_skew_s` off the wall clock): what it stamps changes with."""
        return now_ms() + self.config.clock_skew_s * 1000

    def mutate_after_serving(self, module: str, served: int) -> None:
        """Apply `mutation_rate` mutations per object served to the module being served."""
        rate = self.config.mutation_rate
        if rate <= 0.0:
            return
        credit = self.mutation_credit.get(module, 0.0) + rate * served
        dataset = self.datasets[module]
        while credit >= 1.0:
            credit -= 1.0
            dataset.mutate_randomly(self.mutation_rng, self.now_ms(), self.config.mutation_kinds)
        self.mutation_credit[module] = credit

    def dialect_writer(self, module: str, version: str) -> DialectWriter:
        """The writer of `--dialect` for one module and version (built once)."""
        key = (module, version)
        writer = self._dialect_writers.get(key)
        if writer is None:
            writer = self._dialect_writers[key] = DialectWriter(self.config.dialects, *key)
        return writer

    def report(self) -> dict[str, Any]:
        """`/_sandbox/stats`: the request counters plus the mutations made so far per module."""
        report = self.stats.as_dict()
        report["mutations"] = {
            module: dict(Counter(m.kind for m in dataset.mutations))
            for module, dataset in self.datasets.items()
            if dataset.mutations
        }
        if self.capacity is not None:
            report["capacity"] = self.capacity.as_dict()
        return report


STATE_KEY: Final = web.AppKey("sandbox_state", SandboxState)
