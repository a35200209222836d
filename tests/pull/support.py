"""Running one window loop (`producer.pull.window.WindowPull`) by itself, over real sockets.

`window_context` assembles what flow.py gives every window of a pull (the partner's HTTP session,
the Kafka producer and topics, the checkpoint store, the progress reporter) with the same
`producer.pull.assembly` functions, for a partner module URL and the embedded broker.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from producer import partners
from producer.kafka.checkpoints import CheckpointStore, StoredState
from producer.kafka.output import KafkaOutput
from producer.kafka.records import PullTopics
from producer.observe.progress import ProgressReporter
from producer.observe.telemetry import setup_telemetry
from producer.observe.view import LogView
from producer.ocpi.http.discovery import discover
from producer.ocpi.http.ratelimit import RequestGate
from producer.ocpi.protocol.query import pin_now
from producer.pull.assembly import partner_http, partner_limiter, pull_context
from producer.pull.context import PullContext
from sandbox.app import SandboxState
from schemas.events import EventBase
from schemas.records import PullPlan, WindowCheckpoint, WindowSpec
from tests.kafka_read import keys, progress_events
from tests.support import pull_settings, truth_keys

PULL_ID = "window-test"
# The sandbox's first object was last updated at 2020-01-01T00:00:00Z, object i i seconds later.
HISTORY_START = datetime(2020, 1, 1, tzinfo=UTC)


def window_spec(date_from: datetime | None, date_to: datetime, expected: int = 0) -> WindowSpec:
    """Window 0 of a pull: `[date_from, date_to)`."""
    return WindowSpec(index=0, date_from=date_from, date_to=date_to, expected=expected)


@contextlib.asynccontextmanager
async def window_context(
    url: str, bootstrap: str, prefix: str, spec: WindowSpec, **options: Any
) -> AsyncIterator[PullContext]:
    """The context of a pull whose only window is `spec`, reading the module endpoint `url`."""
    settings = pull_settings(
        bootstrap, prefix, url=url, module=None, max_attempts=3, kafka_deadline_s=30.0, **options
    )
    (target,) = partners.targets(settings)
    kafka = KafkaOutput(settings.kafka_connection(), partitions=3, deadline_s=30.0)
    await kafka.start()
    try:
        telemetry = setup_telemetry({})
        gate = RequestGate(None)
        limiter = partner_limiter(target.options)
        async with partner_http(target, settings, telemetry, gate, lambda _: None, limiter) as http:
            endpoint = await discover(http, URL(url), target.module, target.ocpi_version)
            topics = PullTopics.of(prefix, endpoint.module)
            await kafka.ensure_topics(topics.specs(digests=False))
            store = CheckpointStore(kafka, topics.checkpoints, target.partner, endpoint.module)
            progress = ProgressReporter(
                kafka,
                topics.progress,
                LogView(),
                pull_id=PULL_ID,
                partner=target.partner,
                module=endpoint.module,
            )
            plan = PullPlan(
                pull_id=PULL_ID,
                partner=target.partner,
                module=endpoint.module,
                ocpi_version=endpoint.ocpi_version,
                kind="full",
                date_from=spec.date_from,
                date_to=pin_now(),
                windows=[spec],
                created_at=datetime.now(UTC),
                totals_reported=spec.expected > 0,  # a window spec without a planned count
            )
            ctx = pull_context(
                target, settings, kafka, progress, PULL_ID, http, endpoint, topics, store, plan
            )
            try:
                yield ctx
            finally:
                await progress.flush()
    finally:
        await kafka.stop()


def resume_at(
    ctx: PullContext, spec: WindowSpec, offset: int, total: int | None, emitted: int
) -> WindowCheckpoint:
    """A checkpoint of `spec` that got as far as `offset` (with the total reported there)."""
    return WindowCheckpoint(
        pull_id=ctx.pull_id,
        partner=ctx.partner,
        module=ctx.endpoint.module,
        window=spec.index,
        date_from=spec.date_from,
        date_to=spec.date_to,
        pinned_date_to=ctx.pinned_date_to,
        next_offset=offset,
        total_at_offset=total,
        done=False,
        objects_emitted=emitted,
        updated_at=datetime.now(UTC),
    )


async def stored(ctx: PullContext) -> StoredState:
    """The pull's checkpoints once every queued one is acknowledged."""
    await ctx.store.flush()
    return await ctx.store.load(ctx.pull_id)


async def events(ctx: PullContext) -> list[EventBase]:
    """The pull's progress events so far."""
    await ctx.progress.flush()
    return await progress_events(ctx.kafka.bootstrap, ctx.topics.progress)


async def produced_keys(ctx: PullContext) -> list[str]:
    """Keys of every record on the objects topic."""
    return await keys(ctx.kafka.bootstrap, ctx.topics.objects)


def window_truth(state: SandboxState, spec: WindowSpec, module: str = "tokens") -> list[str]:
    """Keys of the window's objects as the sandbox holds them now, in list order."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000) + 1000
    start = None if spec.date_from is None else int(spec.date_from.timestamp() * 1000)
    end = int(spec.date_to.timestamp() * 1000)
    inside = [
        (last_updated, key)
        for key, last_updated in truth_keys(state, module, "2.2.1", now_ms).items()
        if (start is None or last_updated >= start) and last_updated < end
    ]
    return [key for _, key in sorted(inside)]
