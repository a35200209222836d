"""One partner module's pull, top to bottom: the story.

discover the endpoint → load checkpoints → plan (or reuse the plan: resume, other shards) →
pull this shard's windows concurrently (each: pages → records → send → ack → checkpoint) → replay
what a broker outage may have lost → judge completeness → record the module's sync state when the
whole pull is complete → tombstones (optional) → report.
"""

from __future__ import annotations

import asyncio
import time

from opentelemetry import trace

from producer.config import PullSettings, PullTarget
from producer.errors import IncompletePullError, PullError
from producer.kafka.checkpoints import CheckpointStore, StoredState
from producer.kafka.output import KafkaOutput, KafkaWait
from producer.kafka.records import PullTopics
from producer.observe.progress import ProgressReporter
from producer.observe.telemetry import PullMetrics, Telemetry
from producer.observe.view import View
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.http.discovery import discover
from producer.ocpi.http.limiter import AdaptiveLimiter
from producer.ocpi.http.ratelimit import RequestGate
from producer.ocpi.protocol.responses import RetryNotice
from producer.ocpi.protocol.versions import ModuleEndpoint
from producer.pull import assembly
from producer.pull.at_least_once import AtLeastOnce
from producer.pull.context import Delivery, PullContext
from producer.pull.exactly_once import ExactlyOnce
from producer.pull.plan import (
    load_state,
    pinned_flag_warnings,
    plan_or_wait,
    read_back_written,
    record_if_all_done,
    shard_windows,
)
from producer.pull.stop import StopRequest
from producer.pull.summary import (
    PullSummary,
    report_end,
    report_failure,
    warn_about_clock,
    warn_about_partner,
)
from producer.pull.tombstones import tombstones_after
from producer.pull.verdict import WindowResult, judge_pull
from schemas.records import PullPlan, WindowSpec

# On a stop, progress events get this long to reach Kafka before the process exits.
FLUSH_ON_STOP_S = 5.0


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
        stop: StopRequest | None = None,
        limiter: AdaptiveLimiter | None = None,
    ) -> None:
        self.target, self.settings, self.kafka = target, settings, kafka
        self.telemetry, self.pull_id = telemetry, pull_id
        self.gate = gate or RequestGate(target.options.rate_limit, target.options.rate_burst)
        module = target.module or "?"
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
            module=module,
            shard_index=settings.shard_index,
            shard_count=settings.shard_count,
            metrics=PullMetrics(telemetry.meter, target.partner, module),
        )
        self.http: OcpiHttp | None = None
        self.stop = stop or StopRequest()
        self.stop.drain_s = settings.kafka_deadline_s
        self.limiter = limiter or assembly.partner_limiter(target.options)
        self.progress.concurrency = lambda: self.limiter.permits
        self.delivery: Delivery | None = None  # chosen once the module is known
        self._started = time.monotonic()

    async def run(self) -> PullSummary:
        """Pull, never raising: failures end up in the summary (and a `pull_failed` event)."""
        with self.telemetry.tracer.start_as_current_span(
            "ocpi.pull",
            attributes={"ocpi.partner": self.target.partner, "ocpi.pull_id": self.pull_id},
        ) as span:
            heartbeat = asyncio.create_task(self._heartbeat())
            try:
                await self._run()
            except PullError as error:
                self._failed(error, span)
            except asyncio.CancelledError:
                if not self.stop.caught():
                    raise
                self._failed(self.stop.error(), span)
            finally:
                heartbeat.cancel()
                if self.delivery is not None:
                    await self.delivery.stop()
            span.set_attribute("ocpi.complete", self.summary.complete)
            span.set_attribute("ocpi.objects_emitted", self.summary.objects_emitted)
        self.summary.duration_s = self._elapsed()
        await self.progress.flush(timeout_s=FLUSH_ON_STOP_S if self.stop.requested else None)
        return self.summary

    def _failed(self, error: PullError, span: trace.Span) -> None:
        self.summary.fail(error)
        self.summary.take_counts(self.progress, self._retries())
        report_failure(self.summary, self.progress, error, self._elapsed())
        span.set_status(trace.Status(trace.StatusCode.ERROR, error.kind))

    def stopped_before_start(self, error: PullError) -> PullSummary:
        """A stop came while this pull waited for its turn: it never started."""
        self.summary.fail(error)
        return self.summary

    async def _heartbeat(self) -> None:
        every = self.settings.heartbeat_s
        while True:
            await asyncio.sleep(every)
            self.progress.heartbeat(every)

    async def _run(self) -> None:
        async with assembly.partner_http(
            self.target, self.settings, self.telemetry, self.gate, self._on_retry, self.limiter
        ) as http:
            self.http = http
            endpoint = await discover(
                http, assembly.target_url(self.target), self.target.module, self.target.ocpi_version
            )
            self._use_endpoint(endpoint)
            topics = PullTopics.of(self.settings.topic_prefix, endpoint.module)
            self.delivery = delivery = self._delivery(topics, endpoint.module)
            store = await delivery.start()
            state, resumed = await load_state(store, self.settings, self.pull_id)
            self.summary.resumed = resumed
            plan = await self._plan(http, endpoint, store, state if resumed else None, state)
            if plan is None:
                return  # completed before: nothing to do
            windows = shard_windows(plan, self.settings)
            assembly.announce(self.summary, self.progress, http, endpoint, plan, windows, state)
            keystate = await assembly.load_keystate(
                self.kafka, topics, self.target, endpoint,
                committed_within_s=delivery.committed_within_s,
            )  # fmt: skip
            ctx = assembly.pull_context(
                self.target, self.settings, self.kafka, self.progress, self.pull_id, http,
                endpoint, topics, store, plan, delivery=delivery, keystate=keystate, stop=self.stop,
            )  # fmt: skip
            await self._pull(ctx, store, plan, windows, state if resumed else StoredState())

    async def _plan(
        self,
        http: OcpiHttp,
        endpoint: ModuleEndpoint,
        store: CheckpointStore,
        resumed: StoredState | None,
        state: StoredState,
    ) -> PullPlan | None:
        """The plan to follow: the resumed one, shard 0's, or a new one; None when complete."""
        plan = None if resumed is None else resumed.plan
        if plan is not None:
            for warning in pinned_flag_warnings(self.settings, self.target, plan):
                self.summary.warnings.append(warning)
                self.progress.warning("resumed_with_other_flags", warning)
            if plan.completed:
                assembly.already_complete(self.summary, plan)
                return None
            return plan
        plan, warnings = await plan_or_wait(
            http=http, endpoint=endpoint, store=store, state=state, settings=self.settings,
            target=self.target, pull_id=self.pull_id, progress=self.progress,
        )  # fmt: skip
        self.summary.warnings.extend(warnings)
        return plan

    async def _pull(
        self,
        ctx: PullContext,
        store: CheckpointStore,
        plan: PullPlan,
        windows: list[WindowSpec],
        state: StoredState,
    ) -> None:
        """The windows, a replay if the broker was lost, the verdict, the record, the report."""
        results = await self._pull_all(ctx, plan, windows, state)
        await store.flush()
        self._judge(ctx, plan, windows, results)
        if self.summary.complete:
            self.summary.pull_complete_all_shards = await record_if_all_done(
                store, plan, self.target.partner
            )
        if self.target.options.emit_tombstones:
            await self._tombstones(ctx, plan)
        report_end(self.summary, self.progress, self._elapsed())
        if not self.summary.complete:
            raise IncompletePullError(self.summary.incomplete_message())

    def _delivery(self, topics: PullTopics, module: str) -> Delivery:
        """How this pull's records reach Kafka (`--delivery`). Exactly-once: checkpoints live in
        the pull's transactions, whose producer starts first (fencing this pull shard's earlier
        processes) so that what they committed is all there to read."""
        if self.settings.delivery == "exactly-once":
            return ExactlyOnce(
                self.settings, self.kafka, topics, partner=self.target.partner, module=module,
                pull_id=self.pull_id, progress=self.progress, on_wait=self.on_kafka_wait,
                digests=self.target.options.uses_digests,
            )  # fmt: skip
        return AtLeastOnce(
            self.kafka, topics, partner=self.target.partner, module=module,
            replay_s=self.settings.kafka_replay_s,
        )  # fmt: skip

    async def _pull_all(
        self, ctx: PullContext, plan: PullPlan, windows: list[WindowSpec], state: StoredState
    ) -> list[WindowResult]:
        """This shard's windows (a resume's knowing what Kafka already has), and the recovery
        their delivery needs: what a broker outage may have lost read again (at-least-once), or
        a lost commit read again from Kafka's committed state (exactly-once)."""
        task = asyncio.current_task()
        if task is not None:  # a signal now drains this pull instead of cancelling it
            self.stop.draining.add(task)
        if self.summary.resumed:
            before = await read_back_written(ctx, plan, state, windows, self.progress)
            ctx = ctx.knowing(before)
            mine = {w.index for w in windows}
            ctx.counters.add_earlier(c for i, c in state.windows.items() if i in mine)
        return await ctx.delivery.pull(ctx, plan, windows, state, self.summary)

    def _use_endpoint(self, endpoint: ModuleEndpoint) -> None:
        self.summary.module = endpoint.module
        self.summary.ocpi_version = endpoint.ocpi_version
        self.summary.ocpi_version_reason = endpoint.version_reason
        self.progress.set_version(endpoint.ocpi_version)

    def _judge(
        self,
        ctx: PullContext,
        plan: PullPlan,
        windows: list[WindowSpec],
        results: list[WindowResult],
    ) -> None:
        verdict = judge_pull(results, (w.index for w in windows))
        self.summary.apply(verdict, ctx.counters)
        warn_about_partner(self.summary, ctx.counters, ctx.repair, self.progress)
        warn_about_clock(ctx.http.clock.estimate, plan, self.progress)
        self.summary.take_counts(self.progress, self._retries())
        self.summary.take_concurrency(self.limiter.summary())

    async def _tombstones(self, ctx: PullContext, plan: PullPlan) -> None:
        """After a complete, verified, recorded full pull, tombstone the keys that went (a deletion
        shows only as absence from a complete snapshot)."""
        tombstones, refused = await tombstones_after(
            ctx, plan, complete=self.summary.complete, resumed=self.summary.resumed,
            shard_count=self.settings.shard_count,
            overlap_s=self.settings.incremental_overlap_s,
        )  # fmt: skip
        self.summary.tombstones = tombstones
        self.summary.link_repairs = ctx.repair.repairs  # the catch-up read's count too
        if refused is not None:
            self.summary.tombstones_skipped = refused
            self.progress.warning("tombstones_not_emitted", refused)

    def _retries(self) -> int:
        return (0 if self.http is None else self.http.total_retries) + self.kafka.waits

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def _on_retry(self, notice: RetryNotice) -> None:
        self.progress.retry(notice.reason, notice.wait_s, notice.attempt, notice.url, notice.window)

    def on_kafka_wait(self, wait: KafkaWait) -> None:
        """Kafka did not answer: reported as a retry event (delivered once the broker is back)."""
        self.progress.retry(f"kafka: {wait.reason}", wait.wait_s, wait.attempt, None, None)
