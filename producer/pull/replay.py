"""After a broker outage: re-read what a restarted broker may have lost, though acknowledged.

Two checks, one cheap and early, one exact and final. After an outage, the stretch acknowledged
shortly before it is read again (`--kafka-replay-s`). Before the pull claims completeness, Kafka
itself is asked: every partition written must still hold the highest offset acknowledged to it,
and no acknowledgement may have reused an offset given before (kafka/durability.py). A window with
writes Kafka lost is read again from its start; writes still lost after that end the pull with
`kafka_lost_writes` (exit 6), never with exit 0. The pulls of a partners file share one producer:
each checks its own pages against every loss shown, so none takes another's loss for its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from producer.errors import KafkaLostWritesError
from producer.kafka.durability import Losses, lost_in
from producer.pull.context import PullContext
from producer.pull.summary import PullSummary
from producer.pull.verdict import (
    AckMark,
    Replay,
    WindowResult,
    replay_after_loss,
    replay_before_outages,
)
from producer.pull.window import WindowPull
from schemas.records import PullPlan, WindowCheckpoint, WindowSpec

MAX_REPLAY_ROUNDS = 3


async def replay_after_outages(
    ctx: PullContext,
    plan: PullPlan,
    windows: list[WindowSpec],
    results: list[WindowResult],
    *,
    outages_before: int,
    replay_s: float,
    summary: PullSummary,
) -> list[WindowResult]:
    """Read again, per window, the stretch acknowledged shortly before each outage of this pull
    (and of the replays themselves, a few rounds at most)."""
    by_index = {w.index: w for w in windows}
    seen_outages = outages_before
    for _round in range(MAX_REPLAY_ROUNDS):
        # Only outages after which the broker did not show it kept its acknowledged writes
        # (a correct broker shows it: kafka/kept.py); noida-db's restarts do not.
        outages = ctx.kafka.may_have_lost(ctx.kafka.outages[seen_outages:], replay_s)
        seen_outages = len(ctx.kafka.outages)
        if not outages or replay_s <= 0:
            return results
        todo = {
            r.index: wanted
            for r in results
            if (wanted := replay_before_outages(r.ack_history, outages, replay_s)) is not None
        }
        if not todo:
            return results
        summary.replayed_windows += len(todo)
        message = (
            f"Kafka was unavailable during the pull: re-reading {len(todo)} window(s) from "
            f"where they were {replay_s:g} s before, in case the broker lost acknowledged writes"
        )
        summary.warnings.append(f"kafka_outage_replay: {message}")
        ctx.progress.warning("kafka_outage_replay", message)
        slots = asyncio.Semaphore(ctx.options.windows_at_once)

        async def reread(
            original: WindowResult,
            replay: Replay,
            slots: asyncio.Semaphore = slots,
        ) -> WindowResult:
            spec = by_index[original.index]
            resume = _replay_checkpoint(ctx, plan, spec, replay)
            async with slots:
                again = await WindowPull(ctx, spec, resume, stop_at=replay.stop_at).run()
            summary.replayed_objects += again.objects_emitted
            # Every page written stays in the history: the final check of what Kafka lost
            # must find each of them.
            return dataclasses.replace(
                original,
                complete=again.complete and original.complete,
                ack_history=original.ack_history + again.ack_history,
            )

        results = list(
            await asyncio.gather(
                *(reread(r, todo[r.index]) if r.index in todo else _same(r) for r in results)
            )
        )
    return results


def _replay_checkpoint(
    ctx: PullContext, plan: PullPlan, spec: WindowSpec, replay: Replay
) -> WindowCheckpoint:
    return WindowCheckpoint(
        pull_id=ctx.pull_id,
        partner=ctx.partner,
        module=plan.module,
        window=spec.index,
        date_from=spec.date_from,
        date_to=spec.date_to,
        pinned_date_to=plan.date_to,
        next_offset=replay.offset,
        total_at_offset=replay.total,
        done=False,
        objects_emitted=0,
        updated_at=datetime.now(UTC),
    )


async def _same(result: WindowResult) -> WindowResult:
    return result


async def replay_lost_writes(
    ctx: PullContext,
    plan: PullPlan,
    windows: list[WindowSpec],
    results: list[WindowResult],
    *,
    summary: PullSummary,
) -> list[WindowResult]:
    """Ask Kafka whether it still holds what it acknowledged; write again the windows whose
    writes it lost (a few rounds at most). Raises KafkaLostWritesError when it keeps losing them.
    A loss no page of this pull was written to is another pull's (a partners file shares one
    producer): that pull finds it too."""
    by_index = {w.index: w for w in windows}
    topics = [ctx.topics.objects, ctx.topics.deadletter]
    for _round in range(MAX_REPLAY_ROUNDS):
        lost = await ctx.kafka.lost_writes(topics)
        hit = _windows_hit(results, lost)
        if not hit:
            return results
        summary.replayed_windows += len(hit)
        message = _lost_message(lost, f"{len(hit)} window(s)") + ": writing them again"
        if not any(w.startswith("kafka_lost_writes") for w in summary.warnings):
            summary.warnings.append(f"kafka_lost_writes: {message}")
        ctx.progress.warning("kafka_lost_writes", message)
        slots = asyncio.Semaphore(ctx.options.windows_at_once)

        async def again(
            original: WindowResult, replay: Replay, slots: asyncio.Semaphore = slots
        ) -> WindowResult:
            spec = by_index[original.index]
            async with slots:
                redone = await WindowPull(
                    ctx, spec, _replay_checkpoint(ctx, plan, spec, replay), stop_at=replay.stop_at
                ).run()
            summary.replayed_objects += redone.objects_emitted
            return dataclasses.replace(
                original,
                complete=redone.complete and original.complete,
                ack_history=redone.ack_history,
            )

        results = list(
            await asyncio.gather(
                *(again(r, hit[r.index]) if r.index in hit else _same(r) for r in results)
            )
        )
    lost = await ctx.kafka.lost_writes(topics)
    if _windows_hit(results, lost):
        raise KafkaLostWritesError(_lost_message(lost, "the windows written again"))
    return results


def _windows_hit(results: list[WindowResult], lost: Losses) -> dict[int, Replay]:
    """The windows with acknowledged pages among the lost writes: what of each to write again."""

    def gone(entry: AckMark) -> bool:
        return entry.marks is not None and lost_in(entry.marks, lost)

    return {
        r.index: wanted
        for r in results
        if (wanted := replay_after_loss(r.ack_history, gone)) is not None
    }


def _lost_message(lost: Losses, whose: str) -> str:
    where = ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(lost)[:6])
    return (
        f"Kafka no longer holds writes it acknowledged ({where}{', …' if len(lost) > 6 else ''};"
        f" {whose})"
    )
