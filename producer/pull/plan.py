"""A pull's plan: resume state, planning (shard 0) or waiting for the plan (other shards), and
recording the module's sync state once every shard's windows are complete."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from yarl import URL

from producer.config import PullSettings, PullTarget
from producer.errors import ConfigError
from producer.kafka.checkpoints import CheckpointStore, StoredState
from producer.kafka.connection import KafkaConnection
from producer.kafka.consume import end_offsets
from producer.kafka.inventory import WrittenBefore, written_before
from producer.observe.progress import ProgressReporter
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.planning.planning import PlannedWindows, plan_windows
from producer.ocpi.planning.windows import windows_for_shard
from producer.ocpi.protocol.query import pin_now
from producer.ocpi.protocol.responses import FetchedPage, PageContext
from producer.ocpi.protocol.versions import ModuleEndpoint
from producer.pull.context import PullContext
from schemas.records import PullPlan, SyncState, WindowCheckpoint, WindowSpec


async def load_state(
    store: CheckpointStore, settings: PullSettings, pull_id: str
) -> tuple[StoredState, bool]:
    """The stored state of this pull id, and whether the pull resumes from it."""
    if settings.resume and settings.pull_id is None:
        raise ConfigError("--resume needs the --pull-id of the pull to resume")
    state = await store.load(pull_id)
    resumed = state.plan is not None and settings.resume is not False
    # Exactly-once: a process killed before its first commit left nothing, so there is nothing
    # to resume and the pull starts afresh.
    nothing_kept = settings.delivery == "exactly-once"
    if settings.resume and state.plan is None and settings.shard_index == 0 and not nothing_kept:
        raise ConfigError(f"nothing to resume: no checkpoint for pull {pull_id}")
    return state, resumed


NO_PREVIOUS_PULL = "no complete pull of this partner module is recorded; pulling everything"


def snapshot_bounds(
    settings: PullSettings, sync: SyncState | None, partner_behind_s: float = 0.0
) -> tuple[datetime | None, datetime, Literal["full", "incremental"]]:
    """`date_from`, the pinned `date_to` and the kind of a new plan: `--incremental` starts at
    the last complete pull's date_to (less the overlap), or pulls everything without one. Now
    is read off the partner's clock when it lags ours (`partner_behind_s`)."""
    date_to = settings.date_to or pin_now(partner_behind_s)
    if settings.incremental and sync is not None:
        overlap = timedelta(seconds=settings.incremental_overlap_s)
        return sync.date_to - overlap, date_to, "incremental"
    return settings.date_from, date_to, "full"


async def plan_or_wait(
    *,
    http: OcpiHttp,
    endpoint: ModuleEndpoint,
    store: CheckpointStore,
    state: StoredState,
    settings: PullSettings,
    target: PullTarget,
    pull_id: str,
    progress: ProgressReporter,
) -> tuple[PullPlan, list[str]]:
    """Shard 0 plans the pull and saves the plan; the other shards wait for it. Also the
    summary warnings planning found."""
    if settings.shard_index > 0:
        waited = await store.wait_for_plan(pull_id, settings.plan_wait_s)
        assert waited.plan is not None
        return waited.plan, []
    skew = http.clock.estimate
    behind = 0.0 if skew is None or settings.date_to is not None else skew.behind_s
    date_from, date_to, kind = snapshot_bounds(settings, state.sync, behind)
    if settings.incremental and state.sync is None:
        progress.warning("no_previous_pull", NO_PREVIOUS_PULL)

    async def probe(url: URL) -> FetchedPage:
        return await http.fetch_page(
            url, endpoint=endpoint.url, context=PageContext(None, 0, 1), follow=False
        )

    planned = await plan_windows(
        probe,
        endpoint.url,
        module=endpoint.module,
        ocpi_version=endpoint.ocpi_version,
        date_from=date_from,
        date_to=date_to,
        window_size=target.options.window_size,
        parallel=target.options.most_in_flight,
    )
    if not planned.totals_reported:
        progress.warning(
            "no_total_count",
            "partner sends no X-Total-Count: one window, no count checks, so objects that "
            "changes during the pull shift past a page can go unnoticed (no tombstones; "
            "--fail-on no_total_count makes this an error)",
        )
    if planned.filters_ignored:
        progress.warning(
            "partner_ignores_date_filters",
            "the partner answered date-filtered counts with the unfiltered total: the pull is "
            "one window, and --incremental or --date-from cannot narrow it",
        )
    plan = PullPlan(
        pull_id=pull_id,
        partner=target.partner,
        module=endpoint.module,
        ocpi_version=endpoint.ocpi_version,
        kind=kind,
        date_from=date_from,
        date_to=date_to,
        windows=planned.windows,
        created_at=datetime.now(UTC),
        window_size=target.options.window_size,
        limit=target.options.limit,
        totals_reported=planned.totals_reported,
        planning_requests=planned.requests,
        date_to_behind_s=round(behind, 3),
    )
    await store.save_plan(plan)
    return plan, []


def shard_windows(plan: PullPlan, settings: PullSettings) -> list[WindowSpec]:
    """The windows this process pulls."""
    return windows_for_shard(plan.windows, settings.shard_index, settings.shard_count)


async def record_if_all_done(store: CheckpointStore, plan: PullPlan, partner: str) -> bool:
    """If every shard's windows are complete: mark the plan done, advance the sync state."""
    state = await store.load(plan.pull_id)
    checkpoints: dict[int, WindowCheckpoint] = state.windows
    if not all(
        (c := checkpoints.get(w.index)) is not None and c.done and c.complete for w in plan.windows
    ):
        return False
    await store.save_plan(plan.model_copy(update={"completed": True}))
    await store.save_sync(
        SyncState(
            partner=partner,
            module=plan.module,
            pull_id=plan.pull_id,
            kind=plan.kind,
            date_to=plan.date_to,
            completed_at=datetime.now(UTC),
        )
    )
    return True


def pinned_flag_warnings(settings: PullSettings, target: PullTarget, plan: PullPlan) -> list[str]:
    """A resumed pull follows its plan: flags given now that the plan pins differently are
    ignored, and said so with the pinned value."""
    given = settings.model_fields_set
    pinned: list[tuple[str, object, object]] = [
        ("date_from", settings.date_from, plan.date_from),
        ("date_to", settings.date_to, plan.date_to),
        ("window_size", target.options.window_size, plan.window_size),
        ("limit", target.options.limit, plan.limit),
    ]
    warnings = []
    for name, now, then in pinned:
        if (
            name in given
            and now != then
            and not (name in ("window_size", "limit") and then is None)
        ):
            shown = then.isoformat() if isinstance(then, datetime) else then
            if then is None:
                shown = "none (from the list's start)" if name == "date_from" else "none"
            warnings.append(
                f"resumed: --{name.replace('_', '-')} ignored; the plan of this pull pins {shown}"
            )
    return warnings


# Records are stamped by the producer's clock, the plan by ours: the same clock, give or take.
CLOCK_MARGIN_MS = 5_000


async def read_back_written(
    ctx: PullContext,
    plan: PullPlan,
    state: StoredState,
    windows: list[WindowSpec],
    progress: ProgressReporter,
) -> WrittenBefore:
    """A resumed pull reads back what it already has in Kafka (with exactly-once, what is
    committed): its windows, given it (`PullContext.knowing`), do not produce it again, and its
    counts start from it. (A shard
    cannot tell the other shards' objects from its own: its counts start from its windows'
    checkpoints.)

    A window whose checkpoint counts more objects than Kafka holds for it (by `pull-window`)
    lost writes Kafka had acknowledged (a broker that restarted, a run killed before it could
    tell): then every window's checkpoint is dropped from `state`, and each is read again from
    its start (a count cannot show every window's loss)."""
    before = await written_before(
        ctx.kafka.connection,
        ctx.topics.objects,
        ctx.topics.deadletter,
        pull_id=ctx.pull_id,
        partner=ctx.partner,
        since_ms=int(plan.created_at.timestamp() * 1000) - CLOCK_MARGIN_MS,
        committed_deadline_s=ctx.delivery.committed_within_s,
    )
    lost = await _lost_since_checkpoints(ctx, state, windows, progress)
    for window in windows:
        checkpoint = state.windows.get(window.index)
        if checkpoint is None or (checkpoint.done and not checkpoint.complete):
            continue
        kept = len(before.window_keys.get(window.index, ()))
        if kept < checkpoint.objects_emitted:
            lost = True
            del state.windows[window.index]
            progress.warning(
                "kafka_lost_writes",
                f"window {window.index}: Kafka holds {kept} of the {checkpoint.objects_emitted} "
                "objects it wrote before this run (it lost acknowledged writes): reading the "
                "window again from its start",
                window=window.index,
            )
    if lost and state.windows:
        # A broker that lost acknowledged writes of one window may have lost some of any window
        # written at the time, and a count shows a loss only when nothing uncounted (pages
        # acknowledged after a window's last checkpoint) hides it: every window is read again
        # from its start. What Kafka holds is not produced again.
        again = sorted(i for i in state.windows if i in {w.index for w in windows})
        for index in again:
            del state.windows[index]
        if again:
            progress.warning(
                "kafka_lost_writes",
                f"Kafka lost acknowledged writes of this pull: {len(again)} more window(s) "
                "are read again from their start (what Kafka holds is not written again)",
            )
    if len(windows) == len(plan.windows):
        progress.objects_emitted = len(before.objects)
        progress.dead_lettered = len(before.dead_letters)
    else:
        mine = {w.index for w in windows}
        progress.objects_emitted = sum(
            c.objects_emitted for i, c in state.windows.items() if i in mine
        )
    return before


async def _lost_since_checkpoints(
    ctx: PullContext, state: StoredState, windows: list[WindowSpec], progress: ProgressReporter
) -> bool:
    """Whether Kafka lost writes it acknowledged before this run: a checkpoint says the run
    before saw it lose some (offsets given again) and stopped before writing them again, or a
    partition's end is not past what a window's checkpoint says was acknowledged there.
    (Offsets a restarted broker gave again to another process's writes hide a loss from the
    second; the count of each window's objects held is the third check.)"""
    mine = [c for w in windows if (c := state.windows.get(w.index)) is not None]
    if any(c.kafka_lost_writes for c in mine):
        progress.warning(
            "kafka_lost_writes",
            "the run before this one saw Kafka lose writes it had acknowledged, and stopped "
            "before writing them again: every window is read again from its start",
        )
        return True
    through = acknowledged_through(mine, (ctx.topics.objects, ctx.topics.deadletter))
    short = await partitions_short_of(ctx.kafka.connection, through)
    if short:
        where = ", ".join(f"{topic}[{partition}]" for topic, partition in short[:6])
        progress.warning(
            "kafka_lost_writes",
            f"Kafka no longer holds writes it acknowledged before this run ({where}"
            f"{', …' if len(short) > 6 else ''}): every window is read again from its start",
        )
    return bool(short)


def acknowledged_through(
    checkpoints: Iterable[WindowCheckpoint], topics: Collection[str]
) -> dict[tuple[str, int], int]:
    """The highest offset acknowledged per partition of `topics`, by the checkpoints."""
    through: dict[tuple[str, int], int] = {}
    for checkpoint in checkpoints:
        for name, offset in checkpoint.written_through.items():
            topic, _, partition = name.rpartition(":")
            if topic in topics and partition.isdigit():
                key = (topic, int(partition))
                through[key] = max(offset, through.get(key, -1))
    return through


async def partitions_short_of(
    connection: KafkaConnection, through: Mapping[tuple[str, int], int]
) -> list[tuple[str, int]]:
    """The partitions whose end offset is not past the offset given for them: Kafka no longer
    holds a write it acknowledged there."""
    if not through:
        return []
    ends = await end_offsets(connection, list(through))
    return sorted(p for p, offset in through.items() if ends.get(p, 0) <= offset)


async def plan_pieces(
    ctx: PullContext, window: WindowSpec, page: int, span: tuple[int, int] | None
) -> PlannedWindows:
    """Date pieces of `window` holding at most `page` objects each, counted by `limit=1`
    requests and split as planning splits (within its budget: a piece that one second fills
    beyond a page stays one piece); `span`, the oldest and newest last_updated seen in it,
    places the first cuts."""
    endpoint = ctx.endpoint

    async def probe(url: URL) -> FetchedPage:
        return await ctx.http.fetch_page(
            url, endpoint=endpoint.url, context=PageContext(window.index, 0, 1), follow=False
        )

    return await plan_windows(
        probe,
        endpoint.url,
        module=endpoint.module,
        ocpi_version=endpoint.ocpi_version,
        date_from=window.date_from,
        date_to=window.date_to,
        window_size=max(1, page),
        parallel=ctx.options.most_in_flight,
        span=span,
        # Pieces are read whole: one cut a little finer than the page is cheaper than a second.
        parts_per_target=1.25,
    )
