"""A run of `ocpi-puller pull`: every target, one Kafka producer, one progress view, one summary."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError

from producer import partners
from producer.config import PullSettings, PullTarget
from producer.errors import KafkaUnavailableError, PullError, WarningFailure
from producer.kafka.output import KafkaOutput, KafkaWait
from producer.kafka.records import PullTopics, TopicSpec
from producer.observe.telemetry import Telemetry, setup_telemetry
from producer.observe.view import View, make_view
from producer.ocpi.http.ratelimit import RequestGate
from producer.ocpi.protocol.versions import module_endpoint_from_url
from producer.pull.assembly import partner_limiter
from producer.pull.flow import Pull
from producer.pull.stop import StopRequest
from producer.pull.summary import PullSummary, new_pull_id
from producer.warning_kinds import failing_warnings

log = logging.getLogger("ocpi_puller")


@dataclass(frozen=True, slots=True)
class RunResult:
    """Every pull's summary and the process exit code (the worst of them)."""

    summaries: list[PullSummary]
    exit_code: int


def _module_of(target: PullTarget) -> str:
    if target.module is not None:
        return target.module
    from yarl import URL

    endpoint = module_endpoint_from_url(URL(target.url), None, target.ocpi_version)
    if endpoint is None:
        from producer.errors import ConfigError

        raise ConfigError("--module is required with a versions URL")
    return endpoint.module


def topics_for(
    settings: PullSettings, modules: set[str], *, digests: bool = False
) -> list[TopicSpec]:
    """Every topic this run writes: object topics, checkpoints and digests are compacted."""
    specs: dict[str, TopicSpec] = {}
    for module in sorted(modules):
        for spec in PullTopics.of(settings.topic_prefix, module).specs(digests=digests):
            specs[spec.name] = spec
    return list(specs.values())


async def run_pulls(
    settings: PullSettings,
    *,
    telemetry: Telemetry | None = None,
    view: View | None = None,
    stop: StopRequest | None = None,
) -> RunResult:
    """Pull every target; never raises for a pull's failure (it is in its summary)."""
    stop = stop or StopRequest()
    targets = partners.targets(settings)
    modules = {_module_of(t) for t in targets}
    attributes = {"ocpi.shard_index": str(settings.shard_index)}
    if len(targets) == 1:
        attributes.update(
            {"ocpi.partner": targets[0].partner, "ocpi.module": _module_of(targets[0])}
        )
    telemetry = telemetry or setup_telemetry(attributes)
    view = view or make_view(settings.shows_progress_bar and settings.output == "text")
    pull_id = settings.pull_id or new_pull_id()
    pulls: list[Pull] = []

    def on_wait(wait: KafkaWait) -> None:
        for pull in pulls:
            pull.on_kafka_wait(wait)

    kafka = KafkaOutput(
        settings.kafka_connection(),
        partitions=settings.topic_partitions,
        replication_factor=settings.replication_factor,
        deadline_s=settings.kafka_deadline_s,
        connect_timeout_s=settings.kafka_connect_timeout_s,
        request_timeout_ms=int(settings.kafka_request_timeout_s * 1000),
        on_wait=on_wait,
        tracer=telemetry.tracer,
    )
    try:
        await kafka.start()
        needs_digests = any(t.options.uses_digests for t in targets)
        await kafka.ensure_topics(topics_for(settings, modules, digests=needs_digests))
        pulls.extend(partner_pulls(targets, settings, kafka, telemetry, view, pull_id, stop))
        summaries = await run_side_by_side(pulls, settings.max_parallel_pulls, stop)
    except KafkaUnavailableError as error:
        summaries = [_failed_summary(t, pull_id, error) for t in targets]
    finally:
        view.close()
        try:
            await kafka.stop()
        finally:
            telemetry.shutdown()
    for summary in summaries:
        if summary.exit_code == 0 and not summary.complete:
            summary.exit_code = 5
    if len(pulls) == len(summaries):
        for pull, summary in zip(pulls, summaries, strict=True):
            fail_on_warnings(summary, pull.target.options.fail_on, pull.progress.warnings)
    return RunResult(summaries, max((s.exit_code for s in summaries), default=0))


def fail_on_warnings(summary: PullSummary, fail_on: str, events: dict[str, str]) -> None:
    """A pull that would exit 0 but reported a warning `--fail-on` names exits 5 instead
    (`error_kind` `warning`); it stays `complete`: every object is in Kafka."""
    if summary.exit_code != 0 or not fail_on:
        return
    found = failing_warnings(fail_on.split(","), summary.warnings, events)
    if found:
        kinds = ", ".join(kind for kind, _ in found)
        error = WarningFailure(f"--fail-on {kinds}: {found[0][1]}")
        summary.error, summary.error_kind, summary.exit_code = (
            str(error),
            error.kind,
            error.exit_code,
        )


def partner_pulls(
    targets: list[PullTarget],
    settings: PullSettings,
    kafka: KafkaOutput,
    telemetry: Telemetry,
    view: View,
    pull_id: str,
    stop: StopRequest,
) -> list[Pull]:
    """A Pull per target; one request gate (rate limit) and one limiter (requests in flight) per
    partner, shared by all of its modules: they share its capacity."""
    gates = {t.partner: RequestGate(t.options.rate_limit, t.options.rate_burst) for t in targets}
    limiters = {t.partner: partner_limiter(t.options) for t in targets}
    return [
        Pull(
            t,
            settings,
            kafka,
            telemetry,
            view,
            pull_id,
            gates[t.partner],
            stop,
            limiters[t.partner],
        )
        for t in targets
    ]


async def run_side_by_side(pulls: list[Pull], at_once: int, stop: StopRequest) -> list[PullSummary]:
    """Every pull, `at_once` at a time; a stop ends those running and those still waiting."""
    slots = asyncio.Semaphore(at_once)

    async def one(pull: Pull) -> PullSummary:
        try:
            async with slots:
                return await pull.run()
        except asyncio.CancelledError:
            if not stop.caught():
                raise
            return pull.stopped_before_start(stop.error())

    tasks = [asyncio.create_task(one(p)) for p in pulls]
    stop.pulls.update(tasks)
    return list(await asyncio.gather(*tasks))


def _failed_summary(target: PullTarget, pull_id: str, error: PullError) -> PullSummary:
    summary = PullSummary(pull_id, target.partner, target.module)
    summary.error, summary.error_kind, summary.exit_code = str(error), error.kind, error.exit_code
    return summary


def run_in_loop(settings: PullSettings) -> RunResult:
    """asyncio.run with SIGTERM/SIGINT turned into a clean, resumable stop."""

    stop = StopRequest()

    async def main() -> RunResult:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.stop, sig.name, task)
        loop.set_exception_handler(quiet_abandoned_kafka_errors)
        tune_garbage_collector()
        return await run_pulls(settings, stop=stop)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise stop.error() from None


def quiet_abandoned_kafka_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Keep aiokafka's leftovers out of the operator's terminal.

    When the broker is gone, the pull ends with one clear line (exit 6); the producer is then
    abandoned, and aiokafka's internals log failures nobody waits for any more ("Future exception
    was never retrieved", errors in its sender's callbacks). Those go to the debug log; anything
    else goes to asyncio's default handler.
    """
    error = context.get("exception")
    source = repr(context.get("handle", "")) + repr(context.get("future", ""))
    if isinstance(error, KafkaError) or "aiokafka" in source or "Sender." in source:
        log.debug("after Kafka became unavailable: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def tune_garbage_collector() -> None:
    """A pull allocates ~15 container objects per OCPI object, nearly all freed by reference
    counting; the default threshold (700) runs the cycle collector dozens of times per page.
    Objects alive at start-up are frozen out of its way."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
