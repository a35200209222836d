"""`ocpi-puller plan …` (the flags of `pull`): plan the pull as `pull` would and print it.

Discovers the endpoint, probes `X-Total-Count` per date window (`plan_windows`, the pull's own
planning), fetches one page at the pull's page size to learn its latency and the partner's page
cap, and estimates the duration at that latency with the pull's requests in flight, held to the
partner's rate limit: the lowest of what its answers advertise (RateLimit-* and X-RateLimit-*
headers), what it showed (a 429) and `--rate-limit`, saying which. Writes nothing to Kafka; reads
it only for `--incremental` (where the last complete pull ended).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from yarl import URL

from producer import partners
from producer.commands.outcome import Outcome, SettingsOf, execute, kafka_errors
from producer.commands.partner import partner_session
from producer.config import PullSettings, PullTarget
from producer.errors import PullError
from producer.kafka.checkpoints import find_pull, find_sync
from producer.kafka.records import PullTopics
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.http.discovery import discover
from producer.ocpi.http.ratehints import RateHint, advertised, binding, observed
from producer.ocpi.http.transport import Answer
from producer.ocpi.paging.pages import ListQuery
from producer.ocpi.planning.planning import PlannedWindows, plan_windows
from producer.ocpi.planning.windows import windows_for_shard
from producer.ocpi.protocol.responses import FetchedPage, PageContext
from producer.ocpi.protocol.versions import ModuleEndpoint
from producer.pull.assembly import DEFAULT_LIMIT
from producer.pull.plan import NO_PREVIOUS_PULL, snapshot_bounds
from schemas.records import WindowSpec


def run(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """Entry point of `ocpi-puller plan`."""

    async def work() -> Outcome:
        return await plan(settings_of(args))

    return execute("plan", args, work)


@dataclass(slots=True)
class Timings:
    """Latencies measured while planning, and what the partner said of its rate limit."""

    started: float = field(default_factory=time.monotonic)
    probes: list[float] = field(default_factory=list)
    page_s: float | None = None
    answers: list[tuple[float, int]] = field(default_factory=list)  # (when, HTTP status)
    advertised: RateHint | None = None

    def heard(self, answer: Answer) -> None:
        """Every answer: its status (a 429 shows the limit), its rate-limit headers."""
        self.answers.append((time.monotonic(), answer.status))
        hint = advertised(answer.headers, time.time())
        if hint is not None and (self.advertised is None or hint.per_s < self.advertised.per_s):
            self.advertised = hint

    def rate_limit(self, configured: float | None) -> RateHint | None:
        """What will hold the pull's pace: advertised, observed or configured (the lowest)."""
        return binding([self.advertised, observed(self.answers)], configured)

    def probe_ms(self) -> float | None:
        """Mean latency of the count probes."""
        return None if not self.probes else 1000 * sum(self.probes) / len(self.probes)


async def plan(settings: PullSettings) -> Outcome:
    """Plan every target (one, or each partner module of a partners file)."""
    plans: list[dict[str, Any]] = []
    worst: PullError | None = None
    for target in partners.targets(settings):
        try:
            plans.append(await plan_target(target, settings))
        except PullError as error:
            plans.append({"partner": target.partner, "module": target.module, **_error(error)})
            if worst is None or error.exit_code > worst.exit_code:
                worst = error
    if len(plans) == 1 and worst is not None:
        return Outcome(failure=worst)  # one target: its failure is the whole story
    fields = {
        "plans": plans,
        "total": sum(p.get("total") or 0 for p in plans),
        "pages": sum(p.get("pages") or 0 for p in plans),
    }
    return Outcome(fields, [line for p in plans for line in plan_text(p)], worst)


def _error(error: PullError) -> dict[str, Any]:
    return {"exit_code": error.exit_code, "error_kind": error.kind, "error": str(error)}


async def plan_target(target: PullTarget, settings: PullSettings) -> dict[str, Any]:
    """Discover, probe and measure one partner module; its plan as JSON-able fields."""
    async with partner_session(target, settings) as http:
        timings = Timings()
        http.on_answer = timings.heard
        endpoint = await discover(http, URL(target.url), target.module, target.ocpi_version)
        warnings = await _stored_plan_warning(settings, target.partner, endpoint.module)
        sync = None
        if settings.incremental:
            connection = settings.kafka_connection()
            topic = PullTopics.of(settings.topic_prefix, endpoint.module).checkpoints
            with kafka_errors(connection, "read the last complete pull from"):
                sync = await find_sync(connection, topic, target.partner, endpoint.module)
            if sync is None:
                warnings.append(f"no_previous_pull: {NO_PREVIOUS_PULL}")
        date_from, date_to, kind = snapshot_bounds(settings, sync)
        planned = await _probe_windows(http, endpoint, target, date_from, date_to, timings)
        limit = target.options.limit or DEFAULT_LIMIT
        page = await _timed_page(http, endpoint, planned.windows, limit, timings)
        redacted = http.redact(endpoint.url)
    if not planned.totals_reported:
        warnings.append("no_total_count: the partner sends no X-Total-Count: one window")
    if planned.filters_ignored:
        warnings.append("partner_ignores_date_filters: date-filtered counts were the total")
    page_size = min(limit, page.limit) if page.limit else limit
    estimate = _estimate(planned, page_size, timings, target, settings)
    return {
        "partner": target.partner,
        "module": endpoint.module,
        "ocpi_version": endpoint.ocpi_version,
        "endpoint": redacted,
        "kind": kind,
        "date_from": _iso(date_from),
        "date_to": _iso(date_to),
        "totals_reported": planned.totals_reported,
        "total": sum(w.expected for w in planned.windows) if planned.totals_reported else None,
        "limit": limit,
        "page_size": page_size,
        **estimate,
        "probes": len(timings.probes),
        # What a pull planning now spends: the summary's `planning_requests`.
        "planning_requests": planned.requests,
        "probe_latency_ms": _round(timings.probe_ms()),
        "page_latency_ms": _round(None if timings.page_s is None else 1000 * timings.page_s),
        "warnings": warnings,
        "exit_code": 0,
    }


async def _stored_plan_warning(settings: PullSettings, partner: str, module: str) -> list[str]:
    """With `--pull-id` of a pull that has a plan, a pull would not plan: it would resume (or
    find it complete). Read only, and only when an id is given."""
    if settings.pull_id is None or settings.resume is False:
        return []
    connection = settings.kafka_connection()
    with kafka_errors(connection, "read checkpoints from"):
        stored = await find_pull(
            connection, f"{settings.topic_prefix}.checkpoints", settings.pull_id
        )
    for pull in stored:
        plan = pull.state.plan
        if (pull.partner, pull.module) == (partner, module) and plan is not None:
            done = "is complete" if plan.completed else "has a stored plan"
            return [
                f"stored_plan: pull {settings.pull_id} {done} (pinned {plan.date_to.isoformat()}); "
                "a pull with this id would use it, not this plan (ocpi-puller reset plans afresh)"
            ]
    return []


async def _probe_windows(
    http: OcpiHttp,
    endpoint: ModuleEndpoint,
    target: PullTarget,
    date_from: datetime | None,
    date_to: datetime,
    timings: Timings,
) -> PlannedWindows:
    async def probe(url: URL) -> FetchedPage:
        started = time.monotonic()
        page = await http.fetch_page(
            url, endpoint=endpoint.url, context=PageContext(None, 0, 1), follow=False
        )
        timings.probes.append(time.monotonic() - started)
        return page

    return await plan_windows(
        probe,
        endpoint.url,
        module=endpoint.module,
        ocpi_version=endpoint.ocpi_version,
        date_from=date_from,
        date_to=date_to,
        window_size=target.options.window_size,
        parallel=target.options.most_in_flight,
    )


async def _timed_page(
    http: OcpiHttp, endpoint: ModuleEndpoint, windows: list[WindowSpec], limit: int, t: Timings
) -> FetchedPage:
    """The first page of the fullest window at the pull's page size: its latency, the cap."""
    fullest = max(windows, key=lambda w: w.expected)
    query = ListQuery(endpoint, fullest.date_from, fullest.date_to, limit)
    started = time.monotonic()
    page = await http.fetch_page(
        query.url(0),
        endpoint=endpoint.url,
        context=PageContext(fullest.index, 0, limit),
        follow=False,
    )
    t.page_s = time.monotonic() - started
    return page


def _estimate(
    planned: PlannedWindows,
    page_size: int,
    timings: Timings,
    target: PullTarget,
    settings: PullSettings,
) -> dict[str, Any]:
    """Pages per window and shard, and the duration of the slowest shard: its pages at the
    measured page latency with the pull's requests in flight (and its rate limit)."""
    options = target.options
    shards = settings.shard_count
    rows: list[dict[str, Any]] = []
    shard_pages = [0] * shards
    shard_windows = [0] * shards
    for shard in range(shards):
        for w in windows_for_shard(planned.windows, shard, shards):
            pages = max(1, math.ceil(w.expected / page_size))
            shard_pages[shard] += pages
            shard_windows[shard] += 1
            rows.append(
                {
                    "index": w.index,
                    "date_from": _iso(w.date_from),
                    "date_to": _iso(w.date_to),
                    "expected": w.expected,
                    "pages": pages,
                    "shard": shard,
                }
            )
    rows.sort(key=lambda r: r["index"])
    planning_s = time.monotonic() - timings.started
    limit = timings.rate_limit(options.rate_limit)
    fetch_s = []
    for pages, windows in zip(shard_pages, shard_windows, strict=True):
        in_flight = max(1, min(options.most_in_flight, windows * options.fanout))
        seconds = pages * (timings.page_s or 0.0) / in_flight
        if limit is not None:
            # --rate-limit paces each process; the partner's own limit, every shard together.
            held = pages if limit.source == "configured" else sum(shard_pages)
            seconds = max(seconds, held / limit.per_s)
        fetch_s.append(seconds)
    return {
        "windows": rows,
        "pages": sum(shard_pages),
        "shards": [
            {"shard": i, "windows": shard_windows[i], "pages": shard_pages[i]}
            for i in range(shards)
        ]
        if shards > 1
        else None,
        "in_flight": max(1, min(options.most_in_flight, len(rows) * options.fanout)),
        "planning_s": round(planning_s, 3),
        "estimated_s": round(planning_s + max(fetch_s), 3),
        "rate_limit": None
        if limit is None
        else {"per_s": round(limit.per_s, 3), "source": limit.source, "detail": limit.detail},
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


RATE_SOURCES = {
    "advertised": "advertised by the partner",
    "observed": "observed (the partner answered 429)",
    "configured": "configured",
}


def _rate_text(limit: dict[str, Any] | None) -> str:
    if limit is None:
        return "none advertised, observed or configured (the estimate assumes none)"
    return (
        f"{limit['per_s']:g} requests/s, {RATE_SOURCES[limit['source']]} ({limit['detail']}); "
        "the estimate is held to it"
    )


def plan_text(p: dict[str, Any]) -> list[str]:
    """A plan as plain lines (never cut, whatever the width)."""
    if p.get("error"):
        return [f"{p['partner']}/{p['module']}: {p['error_kind']}: {p['error']}"]
    total = "unknown (no X-Total-Count)" if p["total"] is None else f"{p['total']:,} objects"
    cap = "" if p["page_size"] == p["limit"] else f" (asked {p['limit']:,}, partner caps it)"
    lines = [
        f"{p['partner']}/{p['module']}: OCPI {p['ocpi_version']} at {p['endpoint']}",
        f"  snapshot: {p['kind']}, last_updated from {p['date_from'] or 'the beginning'} "
        f"to {p['date_to']} (pinned)",
        f"  total: {total} in {len(p['windows'])} windows, {p['pages']:,} pages of "
        f"{p['page_size']:,}{cap}",
        f"  latency: {p['probe_latency_ms']} ms per count probe ({p['probes']} probes), "
        f"{p['page_latency_ms']} ms per page",
        f"  estimate: {p['estimated_s']:,} s with {p['in_flight']} requests in flight "
        f"(planning took {p['planning_s']} s and {p['planning_requests']} count requests)",
        f"  rate limit: {_rate_text(p['rate_limit'])}",
    ]
    row = "  {:>6}  {:<25}  {:<25}  {:>10}  {:>8}  {:>5}"
    lines.append(row.format("window", "from", "to", "expected", "pages", "shard"))
    for w in p["windows"]:
        lines.append(
            row.format(
                w["index"],
                w["date_from"] or "-",
                w["date_to"],
                f"{w['expected']:,}",
                f"{w['pages']:,}",
                w["shard"],
            )
        )
    lines += [f"  warning: {warning}" for warning in p["warnings"]]
    return lines
