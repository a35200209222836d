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
from producer.kafka.keystate import KeyState
from producer.kafka.output import KafkaOutput, KafkaWait
from producer.kafka.records import PullTopics
from producer.observe.progress import ProgressReporter
from producer.observe.telemetry import PullMetrics, Telemetry
from producer.observe.view import View
from producer.ocpi.client import OcpiHttp
from producer.ocpi.ratelimit import RequestGate
from producer.ocpi.responses import RetryNotice
from producer.ocpi.versions import ModuleEndpoint, discover
from producer.pull import assembly
from producer.pull.context import PullContext
from producer.pull.exactly_once import ExactlyOnce
from producer.pull.plan import load_state, plan_or_wait, record_if_all_done, shard_windows
from producer.pull.replay import replay_after_outages
from producer.pull.summary import (
    PullSummary,
    report_end,
    report_failure,
    warn_about_partner,
)
from producer.pull.tombstones import emit_tombstones, tombstones_refused
from producer.pull.verdict import WindowResult, judge_pull
from producer.pull.window import WindowPull
from schemas.records import PullPlan, WindowSpec


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
        self.eos: ExactlyOnce | None = None  # with --delivery exactly-once
        self._started = time.monotonic()

    async def run(self) -> PullSummary:
        """Pull, never raising: failures end up in the summary (and a `pull_failed` event)."""
        with self.telemetry.tracer.start_as_current_span(
            "ocpi.pull",
            attributes={"ocpi.partner": self.target.partner, "ocpi.pull_id": self.pull_id},
        ) as span:
            try:
                await self._run()
            except PullError as error:
                self.summary.fail(error)
                self.summary.take_counts(self.progress, self._retries())
                report_failure(self.summary, self.progress, error, self._elapsed())
                span.set_status(trace.Status(trace.StatusCode.ERROR, error.kind))
            finally:
                if self.eos is not None:
                    await self.eos.stop()
            span.set_attribute("ocpi.complete", self.summary.complete)
            span.set_attribute("ocpi.objects_emitted", self.summary.objects_emitted)
        self.summary.duration_s = self._elapsed()
        await self.progress.flush()
        return self.summary

    async def _run(self) -> None:
        async with assembly.partner_http(
            self.target, self.settings, self.telemetry, self.gate, self._on_retry
        ) as http:
            self.http = http
            endpoint = await discover(
                http, assembly.target_url(self.target), self.target.module, self.target.ocpi_version
            )
            self._use_endpoint(endpoint)
            topics = PullTopics.of(self.settings.topic_prefix, endpoint.module)
            store = await self._checkpoint_store(topics, endpoint.module)
            state, resumed = await load_state(store, self.settings, self.pull_id)
            self.summary.resumed = resumed
            plan = state.plan if resumed else None
            if plan is not None and plan.completed:
                assembly.already_complete(self.summary, plan)
                return
            if plan is None:
                plan, warnings = await plan_or_wait(
                    http=http,
                    endpoint=endpoint,
                    store=store,
                    state=state,
                    settings=self.settings,
                    target=self.target,
                    pull_id=self.pull_id,
                    progress=self.progress,
                )
                self.summary.warnings.extend(warnings)
            windows = shard_windows(plan, self.settings)
            assembly.announce(self.summary, self.progress, http, endpoint, plan, windows, state)
            ctx = assembly.pull_context(
                self.target,
                self.settings,
                self.kafka,
                self.progress,
                self.pull_id,
                http,
                endpoint,
                topics,
                store,
                plan,
            )
            ctx.keystate = await self._load_keystate(topics, endpoint)
            results = await self._pull_all(ctx, plan, windows, state if resumed else StoredState())
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

    async def _checkpoint_store(self, topics: PullTopics, module: str) -> CheckpointStore:
        """Where checkpoints live. Exactly-once: in the pull's transactions, whose producer
        starts first (fencing this pull shard's earlier processes) so that what they committed
        is all there to read."""
        if self.settings.delivery == "exactly-once":
            self.eos = ExactlyOnce(
                self.settings,
                self.kafka,
                topics,
                partner=self.target.partner,
                module=module,
                pull_id=self.pull_id,
                progress=self.progress,
                on_wait=self.on_kafka_wait,
            )
            return await self.eos.start()
        return CheckpointStore(self.kafka, topics.checkpoints, self.target.partner, module)

    async def _pull_all(
        self, ctx: PullContext, plan: PullPlan, windows: list[WindowSpec], state: StoredState
    ) -> list[WindowResult]:
        """This shard's windows, then (at-least-once) what a broker outage may have lost; with
        exactly-once, a lost commit is read again from Kafka's committed state instead."""
        if self.eos is not None:
            await self.eos.prepare(ctx, plan, state)
            return await self.eos.pull_windows(
                ctx, plan, windows, state, self._pull_windows, self.summary
            )
        outages_before = len(self.kafka.outages)
        results = await self._pull_windows(ctx, windows, state)
        return await replay_after_outages(
            ctx,
            plan,
            windows,
            results,
            outages_before=outages_before,
            replay_s=self.settings.kafka_replay_s,
            summary=self.summary,
        )

    def _use_endpoint(self, endpoint: ModuleEndpoint) -> None:
        self.summary.module = endpoint.module
        self.summary.ocpi_version = endpoint.ocpi_version
        self.progress.set_version(endpoint.ocpi_version)

    async def _pull_windows(
        self, ctx: PullContext, windows: list[WindowSpec], state: StoredState
    ) -> list[WindowResult]:
        slots = asyncio.Semaphore(ctx.options.concurrency)
        results: list[WindowResult] = []

        async def one(spec: WindowSpec) -> None:
            checkpoint = state.windows.get(spec.index)
            if checkpoint is not None and checkpoint.done:
                results.append(assembly.result_from_checkpoint(checkpoint))
                return
            async with slots:
                results.append(await WindowPull(ctx, spec, checkpoint).run())

        try:
            async with asyncio.TaskGroup() as group:
                for spec in windows:
                    group.create_task(one(spec))
        except BaseExceptionGroup as failures:
            # One window's fatal error cancelled the others: report that error, not the group.
            raise assembly.first_pull_error(failures) from None
        return sorted(results, key=lambda r: r.index)

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
        self.summary.take_counts(self.progress, self._retries())

    async def _load_keystate(self, topics: PullTopics, endpoint: ModuleEndpoint) -> KeyState | None:
        options = self.target.options
        if not (options.skip_unchanged or options.emit_tombstones):
            return None
        keystate = KeyState(
            self.kafka,
            topics.digests,
            self.target.partner,
            endpoint.module,
            committed_within_s=None if self.eos is None else self.settings.kafka_deadline_s,
        )
        await keystate.load()
        return keystate

    async def _tombstones(self, ctx: PullContext, plan: PullPlan) -> None:
        """P13: after a complete, verified, recorded full pull, tombstone the keys that went."""
        assert ctx.keystate is not None
        refused = tombstones_refused(
            complete=self.summary.complete,
            plan=plan,
            shard_count=self.settings.shard_count,
            resumed=self.summary.resumed,
        )
        if refused is None:
            self.summary.tombstones, refused = await emit_tombstones(ctx, ctx.keystate, plan)
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
