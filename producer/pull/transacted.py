"""One window pass under exactly-once delivery: pages → records → held → settled → commit unit.

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
from dataclasses import dataclass

from producer.kafka.units import Routed
from producer.ocpi.paging.pages import PageDriver, WindowPage
from producer.ocpi.paging.pagination import WindowWalk
from producer.pull.context import PullContext
from producer.pull.ledger import CommittedPages
from producer.pull.records import PageMessages
from producer.pull.selection import WindowSelection
from schemas.records import WindowCheckpoint


@dataclass(frozen=True, slots=True)
class PageNote:
    """What `page_fetched` says about a page, once its unit is committed."""

    window: int
    offset: int
    count: int
    dead: int
    total: int | None
    new: int | None = None  # objects the pull writes for the first time


class TransactedPass:
    """One pass of one window: holds its pages until its checkpoint covers them."""

    def __init__(
        self,
        ctx: PullContext,
        window: int,
        walk: WindowWalk,
        selection: WindowSelection,
        covered: Callable[[WindowWalk, int], WindowCheckpoint],
        chosen: Callable[[PageMessages], None],
        tally: set[int] | None = None,
    ) -> None:
        assert ctx.units is not None
        self._ctx = ctx
        self._units = ctx.units
        self._window = window
        self._walk = walk
        # Called with the objects of the pages settled now: counts them, returns the checkpoint.
        self._covered = covered
        self._chosen = chosen  # told of the records chosen for each settled page
        self._ledger: CommittedPages[int] = CommittedPages(walk, selection, tally)

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
        """A page in hand: hold it; commit what the checkpoint now covers."""
        await self._units.room()
        # From here on nothing awaits: the pages settled now, the records chosen for them and the
        # checkpoint covering them share a unit.
        settled = self._ledger.fetched(fetched.request.request_id, fetched.offset, messages)
        if not settled:
            return
        ctx = self._ctx
        plain: list[Routed] = []
        notes: list[object] = []
        objects = 0
        for offset, records, new in settled:
            self._chosen(records)
            plain += [(ctx.topics.objects, m) for m in records.objects]
            plain += [(ctx.topics.deadletter, m) for m in records.dead_letters]
            if ctx.keystate is not None and records.objects:
                keystate = ctx.keystate
                plain += [
                    (keystate.topic, keystate.digest_record(key, digest))
                    for key, digest in zip(records.keys, records.digests, strict=True)
                ]
            objects += new
            notes.append(
                PageNote(
                    self._window,
                    offset,
                    len(records.objects),
                    len(records.dead_letters),
                    self._walk.latest_total,
                    new,
                )
            )
        checkpoint = ctx.store.window_record(self._covered(self._walk, objects))
        self._units.add(
            plain=plain,
            keyed=[(ctx.topics.checkpoints, checkpoint)],
            pages=len(settled),
            notes=notes,
        )
