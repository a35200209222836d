"""One partner module's pull, top to bottom.

discover the endpoint → load checkpoints → plan (or reuse the plan: resume, other shards) →
pull this shard's windows concurrently (fetch → validate → produce → ack → checkpoint → progress)
→ judge completeness → record the module's sync state when the whole pull is complete.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from opentelemetry import trace
from yarl import URL

from producer.checkpoint import CheckpointStore, StoredState
from producer.config import PullSettings, PullTarget
from producer.errors import ConfigError, IncompletePullError, PullError
from producer.kafka import KafkaOutput, KafkaWait
from producer.keystate import KeyState
from producer.messages import MessageBuilder
from producer.ocpi.client import OcpiHttp, PageContext, RetryNotice, ssl_context
from producer.ocpi.headers import RoutingHeaders
from producer.ocpi.versions import ModuleEndpoint, discover
from producer.planning import new_plan, pin_now, plan_windows
from producer.progress import ProgressReporter, View
from producer.ratelimit import RequestGate
from producer.retry import RetryPolicy
from producer.telemetry import PullMetrics, Telemetry
from producer.tombstones import emit_tombstones, tombstones_refused
from producer.window_pull import (
    PullContext,
    PullCounters,
    Replay,
    WindowPull,
    WindowResult,
    replay_stretch,
)
from producer.windows import windows_for_shard
from schemas.keys import PartnerIdentity
from schemas.records import PullPlan, SyncState, WindowCheckpoint, WindowSpec

DEFAULT_LIMIT = 1000
MAX_REPLAY_ROUNDS = 3


def new_pull_id() -> str:
    """A sortable, unique pull id: start time plus randomness."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def topic_names(prefix: str, module: str) -> dict[str, str]:
    """The topics a pull of `module` writes."""
    return {
        "objects": f"{prefix}.{module}",
        "deadletter": f"{prefix}.deadletter",
        "progress": f"{prefix}.progress",
        "checkpoints": f"{prefix}.checkpoints",
    }


@dataclass(slots=True)
class PullSummary:
    """The outcome of one partner module's pull (printed as the JSON summary line)."""

    pull_id: str
    partner: str
    module: str | None
    objects_emitted: int = 0
    pages: int = 0
    dead_lettered: int = 0
    retries: int = 0
    total_reported: int | None = None
    duration_s: float = 0.0
    complete: bool = False
    ocpi_version: str | None = None
    kind: str = "full"
    date_from: str | None = None
    date_to: str | None = None
    windows: int = 0
    windows_incomplete: int = 0
    shortfall: int = 0
    step_backs: int = 0
    duplicate_keys: int = 0
    found_by_probing: int = 0
    replayed_windows: int = 0
    replayed_objects: int = 0
    resent_objects: int = 0
    skipped_unchanged: int = 0
    tombstones: int = 0
    tombstones_skipped: str | None = None
    resumed: bool = False
    shard_index: int = 0
    shard_count: int = 1
    pull_complete_all_shards: bool | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


class Pull:
    """Runs one `PullTarget` with the run-wide settings, Kafka producer and telemetry."""

    def __init__(
        self,
        target: PullTarget,
        settings: PullSettings,
        kafka: KafkaOutput,
        telemetry: Telemetry,
        view: View,
        pull_id: str,
        gate: RequestGate | None = None,
    ) -> None:
        self.target = target
        self.gate = gate
        self.settings = settings
        self.kafka = kafka
        self.telemetry = telemetry
        self.pull_id = pull_id
        self.summary = PullSummary(
            pull_id,
            target.partner,
            target.module,
            shard_index=settings.shard_index,
            shard_count=settings.shard_count,
        )
        self.progress = ProgressReporter(
            kafka,
            f"{settings.topic_prefix}.progress",
            view,
            pull_id=pull_id,
            partner=target.partner,
            module=target.module or "?",
            shard_index=settings.shard_index,
            shard_count=settings.shard_count,
            metrics=PullMetrics(telemetry.meter, target.partner, target.module or "?"),
        )
        self._started = time.monotonic()

    # -- the story ---------------------------------------------------------------------------------

    async def run(self) -> PullSummary:
        """Pull, never raising: failures end up in the summary (and a `pull_failed` event)."""
        tracer = self.telemetry.tracer
        with tracer.start_as_current_span(
            "ocpi.pull",
            attributes={"ocpi.partner": self.target.partner, "ocpi.pull_id": self.pull_id},
        ) as span:
            try:
                await self._run()
            except PullError as error:
                self._fail(error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, error.kind))
            span.set_attribute("ocpi.complete", self.summary.complete)
            span.set_attribute("ocpi.objects_emitted", self.summary.objects_emitted)
        self.summary.duration_s = round(time.monotonic() - self._started, 3)
        await self.progress.flush()
        return self.summary

    async def _run(self) -> None:
        target, settings = self.target, self.settings
        options = target.options
        gate = self.gate or RequestGate(options.rate_limit, options.rate_burst)
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
            tracer=self.telemetry.tracer,
            tls=ssl_context(
                None if settings.ca_bundle is None else str(settings.ca_bundle),
                settings.insecure_skip_tls_verify,
            ),
            connections=options.concurrency * options.fanout + 2,
            on_retry=self._on_retry,
            span_attributes={"ocpi.partner": target.partner},
        ) as http:
            self.http = http
            endpoint = await discover(http, URL(target.url), target.module, target.ocpi_version)
            self._use_endpoint(endpoint)
            store = CheckpointStore(
                self.kafka,
                f"{settings.topic_prefix}.checkpoints",
                target.partner,
                endpoint.module,
            )
            state, resumed = await self._load_state(store)
            plan = state.plan if resumed else None
            if plan is not None and plan.completed:
                self._already_complete(plan)
                return
            if plan is None:
                plan = await self._plan_or_wait(http, endpoint, store, state)
            windows = self._my_windows(plan)
            self._announce(endpoint, plan, windows, state, resumed)
            ctx = self._context(http, endpoint, store, plan)
            ctx.keystate = await self._load_keystate(endpoint)
            outages_before = len(self.kafka.outages)
            results = await self._pull_windows(ctx, windows, state if resumed else StoredState())
            results = await self._replay_after_outages(ctx, plan, windows, results, outages_before)
            await store.flush()
            self._judge(plan, results, ctx.counters, http)
            if self.target.options.emit_tombstones:
                await self._tombstones(ctx, plan)
            if self.summary.complete:
                self.summary.pull_complete_all_shards = await self._record_if_all_done(store, plan)
            self._report_end()
            if not self.summary.complete:
                raise IncompletePullError(self._incomplete_message())

    # -- steps -------------------------------------------------------------------------------------

    def _use_endpoint(self, endpoint: ModuleEndpoint) -> None:
        self.summary.module = endpoint.module
        self.summary.ocpi_version = endpoint.ocpi_version
        self.progress.set_version(endpoint.ocpi_version)

    async def _load_state(self, store: CheckpointStore) -> tuple[StoredState, bool]:
        settings = self.settings
        if settings.resume and settings.pull_id is None:
            raise ConfigError("--resume needs the --pull-id of the pull to resume")
        state = await store.load(self.pull_id)
        resumed = state.plan is not None and settings.resume is not False
        if settings.resume and state.plan is None and settings.shard_index == 0:
            raise ConfigError(f"nothing to resume: no checkpoint for pull {self.pull_id}")
        self.summary.resumed = resumed
        return state, resumed

    async def _plan_or_wait(
        self, http: OcpiHttp, endpoint: ModuleEndpoint, store: CheckpointStore, state: StoredState
    ) -> PullPlan:
        settings = self.settings
        if settings.shard_index > 0:
            waited = await store.wait_for_plan(self.pull_id, settings.plan_wait_s)
            assert waited.plan is not None
            return waited.plan
        date_to = settings.date_to or pin_now()
        date_from = settings.date_from
        kind: Literal["full", "incremental"] = "full"
        if settings.incremental:
            if state.sync is None:
                self.progress.warning(
                    "no_previous_pull",
                    "no complete pull of this partner module is recorded; pulling everything",
                )
            else:
                kind = "incremental"
                date_from = state.sync.date_to - timedelta(seconds=settings.incremental_overlap_s)
        options = self.target.options

        async def probe(url: URL) -> Any:
            return await http.fetch_page(
                url, endpoint=endpoint.url, context=PageContext(None, 0, 1), follow=False
            )

        windows, totals = await plan_windows(
            probe,
            endpoint.url,
            module=endpoint.module,
            ocpi_version=endpoint.ocpi_version,
            date_from=date_from,
            date_to=date_to,
            window_size=options.window_size,
            parallel=options.concurrency,
        )
        if not totals:
            self.progress.warning(
                "no_total_count", "partner sends no X-Total-Count: one window, no count checks"
            )
        plan = new_plan(
            pull_id=self.pull_id,
            partner=self.target.partner,
            module=endpoint.module,
            ocpi_version=endpoint.ocpi_version,
            kind=kind,
            date_from=date_from,
            date_to=date_to,
            windows=windows,
        )
        await store.save_plan(plan)
        return plan

    def _my_windows(self, plan: PullPlan) -> list[WindowSpec]:
        return windows_for_shard(plan.windows, self.settings.shard_index, self.settings.shard_count)

    def _announce(
        self,
        endpoint: ModuleEndpoint,
        plan: PullPlan,
        windows: list[WindowSpec],
        state: StoredState,
        resumed: bool,
    ) -> None:
        total = sum(w.expected for w in windows) if windows else 0
        self.summary.total_reported = total
        self.summary.kind = plan.kind
        self.summary.windows = len(windows)
        self.summary.date_from = None if plan.date_from is None else plan.date_from.isoformat()
        self.summary.date_to = plan.date_to.isoformat()
        self.progress.started(
            url=self.http.redact(endpoint.url),
            kind=plan.kind,
            date_from=plan.date_from,
            date_to=plan.date_to,
            windows_total=len(plan.windows),
            windows_this_shard=len(windows),
            total_reported=total,
            resumed=resumed,
        )
        if resumed:
            done = sum(1 for w in windows if (c := state.windows.get(w.index)) and c.done)
            self.progress.objects_emitted = sum(
                c.objects_emitted
                for i, c in state.windows.items()
                if i in {w.index for w in windows}
            )
            self.summary.warnings.append(f"resumed: {done} of {len(windows)} windows already done")

    def _context(
        self, http: OcpiHttp, endpoint: ModuleEndpoint, store: CheckpointStore, plan: PullPlan
    ) -> PullContext:
        settings, target = self.settings, self.target
        options = target.options
        topics = topic_names(settings.topic_prefix, endpoint.module)
        identity = None
        if target.partner_country and target.partner_party:
            identity = PartnerIdentity(target.partner_country.upper(), target.partner_party.upper())
        if endpoint.ocpi_version.startswith("2.1") and identity is None:
            raise ConfigError(
                "OCPI 2.1.1 objects carry no country_code/party_id: give --partner-country and "
                "--partner-party so their keys can be built"
            )
        return PullContext(
            pull_id=self.pull_id,
            partner=target.partner,
            endpoint=endpoint,
            options=options,
            limit=options.limit or DEFAULT_LIMIT,
            pinned_date_to=plan.date_to,
            http=http,
            kafka=self.kafka,
            builder=MessageBuilder(
                partner=target.partner,
                module=endpoint.module,
                ocpi_version=endpoint.ocpi_version,
                pull_id=self.pull_id,
                partner_identity=identity,
            ),
            store=store,
            progress=self.progress,
            topic=topics["objects"],
            deadletter_topic=topics["deadletter"],
            request_slots=asyncio.Semaphore(options.concurrency),
            unacked_pages=asyncio.Semaphore(2 * options.concurrency * options.fanout),
        )

    async def _pull_windows(
        self, ctx: PullContext, windows: list[WindowSpec], state: StoredState
    ) -> list[WindowResult]:
        slots = asyncio.Semaphore(ctx.options.concurrency)
        results: list[WindowResult] = []

        async def one(spec: WindowSpec) -> None:
            checkpoint = state.windows.get(spec.index)
            if checkpoint is not None and checkpoint.done:
                results.append(_result_from_checkpoint(checkpoint))
                return
            async with slots:
                results.append(await WindowPull(ctx, spec, checkpoint).run())

        try:
            async with asyncio.TaskGroup() as group:
                for spec in windows:
                    group.create_task(one(spec))
        except BaseExceptionGroup as failures:
            # One window's fatal error cancelled the others: report that error, not the group.
            raise first_pull_error(failures) from None
        return sorted(results, key=lambda r: r.index)

    async def _replay_after_outages(
        self,
        ctx: PullContext,
        plan: PullPlan,
        windows: list[WindowSpec],
        results: list[WindowResult],
        outages_before: int,
    ) -> list[WindowResult]:
        """Re-read what a restarted broker may have lost though it had acknowledged it."""
        replay_s = self.settings.kafka_replay_s
        by_index = {w.index: w for w in windows}
        seen_outages = outages_before
        for _round in range(MAX_REPLAY_ROUNDS):
            outages = self.kafka.outages[seen_outages:]
            seen_outages = len(self.kafka.outages)
            if not outages or replay_s <= 0:
                return results
            todo = {
                r.index: stretch
                for r in results
                if (stretch := replay_stretch(r.ack_history, outages, replay_s)) is not None
            }
            if not todo:
                return results
            self.summary.replayed_windows += len(todo)
            self.progress.warning(
                "kafka_outage_replay",
                f"Kafka was unavailable during the pull: re-reading {len(todo)} window(s) from "
                f"where they were {replay_s:g} s before, in case the broker lost acknowledged "
                "writes",
            )
            slots = asyncio.Semaphore(ctx.options.concurrency)

            async def replay(
                original: WindowResult,
                todo: dict[int, Replay] = todo,
                slots: asyncio.Semaphore = slots,
            ) -> WindowResult:
                stretch = todo[original.index]
                spec = by_index[original.index]
                resume = WindowCheckpoint(
                    pull_id=self.pull_id,
                    partner=self.target.partner,
                    module=plan.module,
                    window=spec.index,
                    date_from=spec.date_from,
                    date_to=spec.date_to,
                    pinned_date_to=plan.date_to,
                    next_offset=stretch.offset,
                    total_at_offset=stretch.total,
                    done=False,
                    objects_emitted=0,
                    updated_at=datetime.now(UTC),
                )
                async with slots:
                    again = await WindowPull(ctx, spec, resume, stop_at=stretch.stop_at).run()
                self.summary.replayed_objects += again.objects_emitted
                return dataclasses.replace(original, complete=again.complete and original.complete)

            results = list(
                await asyncio.gather(*(replay(r) if r.index in todo else _same(r) for r in results))
            )
        return results

    def _judge(
        self, plan: PullPlan, results: list[WindowResult], counters: PullCounters, http: OcpiHttp
    ) -> None:
        summary = self.summary
        incomplete = [r for r in results if not r.complete]
        expected = {w.index for w in self._my_windows(plan)}
        missing = expected - {r.index for r in results}
        if missing:
            # Every planned window must report; one that vanished is never taken for done.
            raise IncompletePullError(
                f"{len(missing)} window(s) ended without a result: {sorted(missing)[:10]}"
            )
        summary.windows_incomplete = len(incomplete)
        summary.shortfall = sum(r.shortfall for r in incomplete)
        summary.complete = not incomplete
        summary.step_backs = counters.step_backs
        summary.duplicate_keys = counters.duplicate_keys
        summary.found_by_probing = counters.found_by_probing
        summary.skipped_unchanged = counters.skipped_unchanged
        summary.resent_objects = counters.resent_objects
        if counters.found_by_probing:
            summary.warnings.append("partner_needed_probe_past_end")
            self.progress.warning(
                "partner_needed_probe_past_end",
                f"{counters.found_by_probing} objects were found only by probing past a full "
                "page without Link: this partner's totals or links are broken (P2)",
            )
        summary.objects_emitted = self.progress.objects_emitted
        summary.pages = self.progress.pages
        summary.dead_lettered = self.progress.dead_lettered
        summary.retries = http.total_retries + self.kafka.waits
        for problem in {r.problem for r in incomplete if r.problem}:
            summary.warnings.append(problem)
        if counters.full_page_without_link:
            summary.warnings.append("full_page_without_link")
            self.progress.warning(
                "full_page_without_link",
                f"{counters.full_page_without_link} window(s) ended on a full page with no Link; "
                "if the partner's totals are broken (P2), pull with --probe-past-end",
            )

    async def _record_if_all_done(self, store: CheckpointStore, plan: PullPlan) -> bool:
        """If every shard's windows are complete: mark the plan done, advance the sync state."""
        state = await store.load(self.pull_id)
        checkpoints: dict[int, WindowCheckpoint] = state.windows
        if not all(
            (c := checkpoints.get(w.index)) is not None and c.done and c.complete
            for w in plan.windows
        ):
            return False
        await store.save_plan(plan.model_copy(update={"completed": True}))
        await store.save_sync(
            SyncState(
                partner=self.target.partner,
                module=plan.module,
                pull_id=self.pull_id,
                kind=plan.kind,
                date_to=plan.date_to,
                completed_at=datetime.now(UTC),
            )
        )
        return True

    def _already_complete(self, plan: PullPlan) -> None:
        self.summary.complete = True
        self.summary.kind = plan.kind
        self.summary.date_to = plan.date_to.isoformat()
        self.summary.windows = len(plan.windows)
        self.summary.pull_complete_all_shards = True
        self.summary.warnings.append("pull was already complete; nothing to do")

    async def _load_keystate(self, endpoint: ModuleEndpoint) -> KeyState | None:
        options = self.target.options
        if not (options.skip_unchanged or options.emit_tombstones):
            return None
        keystate = KeyState(
            self.kafka,
            f"{self.settings.topic_prefix}.digests",
            self.target.partner,
            endpoint.module,
        )
        await keystate.load()
        return keystate

    async def _tombstones(self, ctx: PullContext, plan: PullPlan) -> None:
        """P13: after a complete, verified full pull, tombstone the keys that disappeared."""
        assert ctx.keystate is not None
        refused = tombstones_refused(
            complete=self.summary.complete,
            plan=plan,
            shard_count=self.settings.shard_count,
            resumed=self.summary.resumed,
        )
        if refused is None:
            outcome = await emit_tombstones(ctx, ctx.keystate, plan, self.target.partner)
            self.summary.tombstones, refused = outcome
        if refused is not None:
            self.summary.tombstones_skipped = refused
            self.progress.warning("tombstones_not_emitted", refused)

    def _report_end(self) -> None:
        s = self.summary
        self.progress.completed(
            complete=s.complete,
            objects_emitted=s.objects_emitted,
            pages=s.pages,
            dead_lettered=s.dead_lettered,
            retries=s.retries,
            total_reported=s.total_reported,
            duration_s=round(time.monotonic() - self._started, 3),
            windows_complete=s.windows - s.windows_incomplete,
            windows_incomplete=s.windows_incomplete,
            shortfall=s.shortfall,
            skipped_unchanged=s.skipped_unchanged,
            tombstones=s.tombstones,
        )

    def _incomplete_message(self) -> str:
        s = self.summary
        return (
            f"pull {s.pull_id} of {s.partner}/{s.module} is incomplete: {s.windows_incomplete} of "
            f"{s.windows} windows fell short by {s.shortfall} objects; resume or run it again"
        )

    def _fail(self, error: PullError) -> None:
        s = self.summary
        s.complete = False
        s.error = str(error)
        s.error_kind = error.kind
        s.exit_code = error.exit_code
        s.objects_emitted = self.progress.objects_emitted
        s.pages = self.progress.pages
        s.dead_lettered = self.progress.dead_lettered
        http = getattr(self, "http", None)
        if http is not None:
            s.retries = http.total_retries + self.kafka.waits
        if isinstance(error, IncompletePullError) and s.error_kind == "incomplete":
            return  # pull_completed(complete=false) already said it
        self.progress.failed(
            reason=error.kind,
            message=str(error),
            objects_emitted=s.objects_emitted,
            duration_s=round(time.monotonic() - self._started, 3),
            resumable=error.kind not in ("config", "partner_auth"),
        )

    def _on_retry(self, notice: RetryNotice) -> None:
        self.progress.retry(notice.reason, notice.wait_s, notice.attempt, notice.url, notice.window)

    def on_kafka_wait(self, wait: KafkaWait) -> None:
        """Kafka did not answer: reported as a retry event (delivered once the broker is back)."""
        self.progress.retry(f"kafka: {wait.reason}", wait.wait_s, wait.attempt, None, None)


async def _same(result: WindowResult) -> WindowResult:
    return result


def first_pull_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first PullError in a (nested) exception group, else the group itself."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found = first_pull_error(error)
            if isinstance(found, PullError):
                return found
        elif isinstance(error, PullError):
            return error
    return group


def _result_from_checkpoint(checkpoint: WindowCheckpoint) -> WindowResult:
    return WindowResult(
        checkpoint.window,
        checkpoint.complete,
        checkpoint.objects_emitted,
        checkpoint.objects_emitted,
        None,
        checkpoint.shortfall,
        checkpoint.passes,
    )
