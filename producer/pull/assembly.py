"""The pieces a pull is assembled from: the partner's HTTP session, the shared window context,
and what the start and a finished pull report. Kept out of `flow.py` so the story stays short."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from yarl import URL

from producer.config import PartnerOptions, PullSettings, PullTarget
from producer.errors import ConfigError
from producer.kafka.checkpoints import CheckpointStore, StoredState
from producer.kafka.keystate import KeyState
from producer.kafka.output import KafkaOutput
from producer.kafka.records import PullTopics
from producer.observe.progress import ProgressReporter
from producer.observe.telemetry import Telemetry
from producer.ocpi.http.client import OcpiHttp, ssl_context
from producer.ocpi.http.concurrency import LimitChange
from producer.ocpi.http.limiter import AdaptiveLimiter
from producer.ocpi.http.ratelimit import RequestGate
from producer.ocpi.http.retry import RetryPolicy
from producer.ocpi.paging.reader import PageReader
from producer.ocpi.paging.repair import LinkRepair
from producer.ocpi.protocol.headers import RoutingHeaders
from producer.ocpi.protocol.responses import RetryNotice
from producer.ocpi.protocol.versions import ModuleEndpoint
from producer.pull.at_least_once import AtLeastOnce
from producer.pull.budget import ByteBudget
from producer.pull.context import Delivery, PullContext
from producer.pull.records import MessageBuilder
from producer.pull.stop import StopRequest
from producer.pull.summary import ALREADY_COMPLETE, PullSummary
from schemas.keys import PartnerIdentity
from schemas.records import PullPlan, WindowSpec

log = logging.getLogger("ocpi_puller")

DEFAULT_LIMIT = 1000


def target_url(target: PullTarget) -> URL:
    """The URL the operator gave (a module endpoint or a versions URL)."""
    return URL(target.url)


@asynccontextmanager
async def partner_http(
    target: PullTarget,
    settings: PullSettings,
    telemetry: Telemetry,
    gate: RequestGate,
    on_retry: Callable[[RetryNotice], None],
    limiter: AdaptiveLimiter,
) -> AsyncIterator[OcpiHttp]:
    """One HTTP session for the partner: headers, retries, pacing, TLS, spans."""
    options = target.options
    async with OcpiHttp(
        token=target.token,
        ocpi_version=target.ocpi_version,
        token_encoding=options.token_encoding,
        correlation_id=str(uuid.uuid4()),
        routing=RoutingHeaders(
            settings.from_country,
            settings.from_party,
            target.partner_country,
            target.partner_party,
        ),
        retry_policy=RetryPolicy(max_attempts=options.max_attempts),
        request_timeout_s=options.request_timeout_s,
        max_page_bytes=options.max_page_bytes,
        gate=gate,
        tracer=telemetry.tracer,
        tls=ssl_context(
            None if settings.ca_bundle is None else str(settings.ca_bundle),
            settings.insecure_skip_tls_verify,
        ),
        connections=options.most_in_flight + 4,
        on_retry=on_retry,
        span_attributes={"ocpi.partner": target.partner},
        limiter=limiter,
    ) as http:
        yield http


def pull_context(
    target: PullTarget,
    settings: PullSettings,
    kafka: KafkaOutput,
    progress: ProgressReporter,
    pull_id: str,
    http: OcpiHttp,
    endpoint: ModuleEndpoint,
    topics: PullTopics,
    store: CheckpointStore,
    plan: PullPlan,
    *,
    delivery: Delivery | None = None,
    keystate: KeyState | None = None,
    stop: StopRequest | None = None,
) -> PullContext:
    """What every window of this pull shares (`delivery`: at-least-once unless given)."""
    options = target.options
    identity = None
    if target.partner_country and target.partner_party:
        identity = PartnerIdentity(target.partner_country.upper(), target.partner_party.upper())
    if endpoint.ocpi_version.startswith("2.1") and identity is None:
        raise ConfigError(
            "OCPI 2.1.1 objects carry no country_code/party_id: give --partner-country and "
            "--partner-party so their keys can be built"
        )
    return PullContext(
        pull_id=pull_id,
        partner=target.partner,
        endpoint=endpoint,
        options=options,
        limit=options.limit or DEFAULT_LIMIT,
        pinned_date_to=plan.date_to,
        totals_reported=plan.totals_reported,
        http=http,
        kafka=kafka,
        reader=PageReader(endpoint.ocpi_version, endpoint.module, identity, options.validation),
        builder=MessageBuilder(
            partner=target.partner,
            module=endpoint.module,
            ocpi_version=endpoint.ocpi_version,
            pull_id=pull_id,
        ),
        store=store,
        progress=progress,
        topics=topics,
        unacked_pages=asyncio.Semaphore(2 * options.windows_at_once * options.fanout),
        unacked_bytes=ByteBudget(settings.max_bytes_in_flight),
        delivery=delivery
        or AtLeastOnce(
            kafka,
            topics,
            partner=target.partner,
            module=endpoint.module,
            replay_s=settings.kafka_replay_s,
        ),
        keystate=keystate,
        repair=LinkRepair.from_setting(options.link_repair),
        stop=stop or StopRequest(),
    )


def announce(
    summary: PullSummary,
    progress: ProgressReporter,
    http: OcpiHttp,
    endpoint: ModuleEndpoint,
    plan: PullPlan,
    windows: list[WindowSpec],
    state: StoredState,
) -> None:
    """`pull_started`, and the summary's plan fields."""
    total = sum(w.expected for w in windows) if plan.totals_reported else None
    summary.total_reported = total
    summary.kind = plan.kind
    summary.windows = len(windows)
    summary.planning_requests = plan.planning_requests
    summary.date_from = None if plan.date_from is None else plan.date_from.isoformat()
    summary.date_to = plan.date_to.isoformat()
    progress.started(
        url=http.redact(endpoint.url),
        kind=plan.kind,
        date_from=plan.date_from,
        date_to=plan.date_to,
        windows_total=len(plan.windows),
        windows_this_shard=len(windows),
        total_reported=total,
        resumed=summary.resumed,
    )
    if summary.resumed:
        mine = {w.index for w in windows}
        done = sum(1 for w in windows if (c := state.windows.get(w.index)) and c.finished)
        progress.objects_emitted = sum(
            c.objects_emitted for i, c in state.windows.items() if i in mine
        )
        summary.warnings.append(f"resumed: {done} of {len(windows)} windows already done")


def already_complete(summary: PullSummary, plan: PullPlan) -> None:
    """The pull id was completed before: nothing to do."""
    summary.complete = True
    summary.kind = plan.kind
    summary.date_to = plan.date_to.isoformat()
    summary.windows = len(plan.windows)
    summary.pull_complete_all_shards = True
    summary.warnings.append(ALREADY_COMPLETE)


async def load_keystate(
    kafka: KafkaOutput,
    topics: PullTopics,
    target: PullTarget,
    endpoint: ModuleEndpoint,
    *,
    committed_within_s: float | None = None,
) -> KeyState | None:
    """What earlier pulls produced (for --skip-unchanged and --emit-tombstones), else None."""
    if not target.options.uses_digests:
        return None
    keystate = KeyState(
        kafka, topics.digests, target.partner, endpoint.module,
        committed_within_s=committed_within_s,
    )  # fmt: skip
    await keystate.load()
    return keystate


def partner_limiter(options: PartnerOptions) -> AdaptiveLimiter:
    """The limiter a partner's options ask for: `auto` adapts up to `max_concurrency`; a number
    pins it. Limit changes are logged with their reason."""
    if options.concurrency == "auto":
        return AdaptiveLimiter.adaptive(options.max_concurrency, on_change=log_change)
    return AdaptiveLimiter.fixed(options.concurrency)


def log_change(change: LimitChange) -> None:
    """A limit change, as an operator reads it in the log."""
    log.info("concurrency %d -> %d (%s)", change.previous_permits, change.permits, change.reason)
