"""Exactly-once delivery of one pull (`--delivery exactly-once`): the flow's few extra steps.

* Before anything is read, the shard's transactional producer starts: that fences any earlier
  process of the same pull and shard and ends the transaction it left open (also one a broker
  left open in a partition after ending it: transactions.py). Only then are the
  checkpoints read (read_committed, to the end), so what the predecessor committed is all there.
* Windows put the pages their checkpoint covers (records, dead letters, digests) and those
  checkpoints into commit units (transacted.py); one task commits each unit as one transaction
  (`--transaction-pages`, `--transaction-ms`).
* A resumed window starts at its last committed checkpoint. Objects this pull committed before
  are recognised when a step-back or a re-read meets them again (they are read back, committed,
  from the objects topic) and are not produced again.
* If Kafka loses transactions it had confirmed (a restarting broker), the windows stop and go on
  from what Kafka has committed, exactly as a resumed process would.

Progress events and tombstones stay outside the transactions (the run's ordinary producer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from producer.config import PullSettings
from producer.errors import KafkaLostWritesError, PullError
from producer.kafka.checkpoints import StoredState
from producer.kafka.committed_checkpoints import CommittedCheckpoints
from producer.kafka.committer import CommittedStateLost, UnitCommitter
from producer.kafka.output import KafkaOutput, KafkaWait
from producer.kafka.records import PullTopics
from producer.kafka.transactions import Transactor, transactional_id
from producer.kafka.units import CommitUnit, UnitPolicy
from producer.observe.progress import ProgressReporter
from producer.ocpi.paging.pages import PageDriver, WindowPage
from producer.pull.context import PullContext
from producer.pull.plan import read_back_written
from producer.pull.records import PageMessages
from producer.pull.summary import PullSummary
from producer.pull.transacted import TransactedPass
from producer.pull.verdict import WindowResult
from producer.pull.window_state import WindowState
from producer.pull.windows import first_pull_error, pull_windows
from schemas.records import PullPlan, WindowSpec

log = logging.getLogger("ocpi_puller")

# Rounds of reading every window again after Kafka lost committed writes.
MAX_REWINDS = 2


class ExactlyOnce:
    """One pull's transactional producer, commit units and committed reads."""

    def __init__(
        self,
        settings: PullSettings,
        kafka: KafkaOutput,
        topics: PullTopics,
        *,
        partner: str,
        module: str,
        pull_id: str,
        progress: ProgressReporter,
        on_wait: Callable[[KafkaWait], None] | None = None,
        digests: bool = False,
    ) -> None:
        self._kafka = kafka
        self._topics = topics
        self._pull_id = pull_id
        self._progress = progress
        # Reads of what the pull wrote (digests, objects read back) see committed records only.
        self.committed_within_s: float | None = settings.kafka_deadline_s
        tid = transactional_id(
            settings.topic_prefix, partner, module, pull_id, settings.shard_index
        )
        self.transactor = Transactor(
            kafka,
            tid,
            connect_timeout_s=settings.kafka_connect_timeout_s,
            transaction_ms=settings.transaction_ms,
            # What its transactions write: each new producer ends what a broker left open there.
            topics=[topics.objects, topics.deadletter, topics.checkpoints]
            + ([topics.digests] if digests else []),
        )
        self.committer = UnitCommitter(
            kafka,
            self.transactor,
            # The unit open and the one committing share the bytes in flight.
            UnitPolicy(
                settings.transaction_pages,
                settings.transaction_ms,
                settings.max_bytes_in_flight // 2,
            ),
            deadline_s=settings.kafka_deadline_s,
            verify_s=settings.kafka_replay_s,
            on_committed=self._report,
            on_wait=on_wait,
        )
        self.store = CommittedCheckpoints(
            kafka,
            topics.checkpoints,
            partner,
            module,
            self.committer,
            read_deadline_s=settings.kafka_deadline_s,
        )

    async def start(self) -> CommittedCheckpoints:
        """Start the transactional producer (fencing this pull shard's earlier processes); the
        checkpoint store to read and write through."""
        await self.transactor.start()
        return self.store

    async def stop(self) -> None:
        """Close the transactional producer."""
        await self.transactor.stop()

    def _report(self, unit: CommitUnit) -> None:
        for note in unit.notes:
            self._progress.page(
                window=note.window,
                offset=note.offset,
                count=note.count,
                dead=note.dead,
                total=note.total,
                new=note.new,
            )

    async def read_pass(
        self,
        ctx: PullContext,
        window: WindowState,
        driver: PageDriver,
        messages_of: Callable[[WindowPage], PageMessages],
        tally: set[int] | None,
    ) -> None:
        """One pass of one window, its pages into commit units with the checkpoint covering
        them."""
        transacted = TransactedPass(ctx, self.committer, window, driver.walk, tally)
        await transacted.read(driver, messages_of)

    async def pull(
        self,
        ctx: PullContext,
        plan: PullPlan,
        windows: list[WindowSpec],
        state: StoredState,
        summary: PullSummary,
    ) -> list[WindowResult]:
        """Pull the windows while their units are committed; after Kafka lost commits, again
        from what it has committed. Before they count as done, Kafka must still hold every
        confirmed commit; windows it lost writes of are read again from their start."""
        rewinds = 0
        while True:
            try:
                results = await self._pull_and_commit(ctx, windows, state)
            except BaseExceptionGroup as group:
                lost, rest = group.split(CommittedStateLost)
                if lost is None or rest is not None:
                    raise first_pull_error(rest or group) from None
                ctx, state = await self._from_committed(ctx, plan, windows, summary)
                continue
            gone = await self.committer.lost_commits()
            if not gone:
                return results
            rewinds += 1
            where = ", ".join(f"{t}[{p}]" for t, p in sorted(gone)[:6])
            if rewinds > MAX_REWINDS:
                raise KafkaLostWritesError(
                    f"Kafka keeps losing committed writes ({where}): check the broker, then run "
                    "the pull again"
                )
            ctx, state = await self._rewind(ctx, plan, windows, summary, where)

    async def _pull_and_commit(
        self, ctx: PullContext, windows: list[WindowSpec], state: StoredState
    ) -> list[WindowResult]:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.committer.run())
            try:
                results = await pull_windows(ctx, windows, state)
                await self.committer.flush()
            except PullError:
                # What the windows put into units before the failure is kept (not read again).
                with contextlib.suppress(PullError, CommittedStateLost):
                    await self.committer.flush()
                raise
            finally:
                self.committer.close()
        return results

    async def _rewind(
        self,
        ctx: PullContext,
        plan: PullPlan,
        windows: list[WindowSpec],
        summary: PullSummary,
        where: str,
    ) -> tuple[PullContext, StoredState]:
        """Kafka no longer holds writes of confirmed commits: every window is read again from its
        start, and what Kafka still holds committed is not produced again."""
        message = (
            f"Kafka no longer holds writes of commits it confirmed ({where}): reading the "
            f"{len(windows)} window(s) again from their start"
        )
        summary.warnings.append(f"kafka_lost_writes: {message}")
        self._progress.warning("kafka_lost_writes", message)
        summary.replayed_windows += len(windows)
        state = await ctx.store.load(self._pull_id)
        before = await read_back_written(ctx, plan, state, windows, self._progress)
        return ctx.knowing(before), StoredState(plan=state.plan, sync=state.sync)

    async def _from_committed(
        self, ctx: PullContext, plan: PullPlan, windows: list[WindowSpec], summary: PullSummary
    ) -> tuple[PullContext, StoredState]:
        """Kafka lost confirmed commits: everything not committed is dropped, and the windows go
        on from the committed checkpoints, as after a resume."""
        self.committer.discard_open()
        state = await ctx.store.load(self._pull_id)
        before = await read_back_written(ctx, plan, state, windows, self._progress)
        again = [w.index for w in windows if not ((c := state.windows.get(w.index)) and c.finished)]
        summary.replayed_windows += len(again)
        message = (
            "Kafka lost transactions it had confirmed (a broker restart): going on from what it "
            f"has committed ({len(again)} window(s) resumed from their committed checkpoints)"
        )
        if f"kafka_lost_commits: {message}" not in summary.warnings:
            summary.warnings.append(f"kafka_lost_commits: {message}")
        self._progress.warning("kafka_lost_commits", message)
        return ctx.knowing(before), state
