"""One window pass under exactly-once delivery: pages → records → wait for the checkpoint →
commit unit.

Each page's records are built as in the at-least-once loop and handed to the ledger (ledger.py):
the walk is told the page is in hand, and the pages its checkpoint has now passed go, with the
records chosen for them, into the open commit unit together with that checkpoint, in one
synchronous step (so no commit can split them). What lies ahead of the window's unbroken run
waits for a later unit. Progress (`page_fetched`) is reported once the unit holding the page is
committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from producer.kafka.committer import UnitCommitter
from producer.kafka.units import PageNote, Routed
from producer.ocpi.paging.pages import PageDriver, WindowPage
from producer.ocpi.paging.pagination import WindowWalk
from producer.pull.context import PullContext
from producer.pull.ledger import CommittedPages
from producer.pull.records import PageMessages
from producer.pull.window_state import WindowState


class TransactedPass:
    """One pass of one window: its pages wait until its checkpoint covers them."""

    def __init__(
        self,
        ctx: PullContext,
        units: UnitCommitter,
        window: WindowState,
        walk: WindowWalk,
        tally: set[int] | None = None,
    ) -> None:
        self._ctx = ctx
        self._units = units
        self._window = window
        self._walk = walk
        self._ledger: CommittedPages[int] = CommittedPages(walk, window.selection, tally)

    async def read(
        self, driver: PageDriver, messages_of: Callable[[WindowPage], PageMessages]
    ) -> None:
        """Every page of the pass into commit units (those ahead of the end, if the pass ends
        early, are left out: nothing commits them, a resume reads them again)."""
        try:
            async with contextlib.aclosing(driver.pages()) as pages:
                async for fetched in pages:
                    await self.take(fetched, messages_of(fetched))
        finally:
            self._ledger.drop()

    async def take(self, fetched: WindowPage, messages: PageMessages) -> None:
        """A page in hand: it waits for the checkpoint; commit what the checkpoint now covers."""
        await self._units.room()
        # From here on nothing awaits: the pages covered now, the records chosen for them and the
        # checkpoint covering them share a unit.
        covered = self._ledger.fetched(fetched.request.request_id, fetched.offset, messages)
        if not covered:
            return
        ctx, window = self._ctx, self._window
        plain: list[Routed] = []
        notes: list[PageNote] = []
        size = 0
        for page in covered:
            offset, records = page.page, page.records
            window.count_dialects(records)
            size += records.size()
            plain += [(ctx.topics.objects, m) for m in records.objects]
            plain += [(ctx.topics.deadletter, m) for m in records.dead_letters]
            if ctx.keystate is not None and records.objects:
                keystate = ctx.keystate
                plain += [
                    (keystate.topic, keystate.digest_record(key, digest))
                    for key, digest in zip(records.keys, records.digests, strict=True)
                ]
            window.emitted += page.new
            notes.append(
                PageNote(
                    window.spec.index,
                    offset,
                    len(records.objects),
                    len(records.dead_letters),
                    self._walk.latest_total,
                    page.new,
                )
            )
        checkpoint = ctx.store.window_record(window.checkpoint(self._walk, done=False))
        self._units.add(
            plain=plain,
            keyed=[(ctx.topics.checkpoints, checkpoint)],
            pages=len(covered),
            size=size,
            notes=notes,
        )
