"""Between fetched pages and Kafka: which records a window sends, and when its checkpoint may
pass them. Pure: the shells (window.py, transacted.py) do the I/O and call these in order.

At-least-once (`AckedPages`): a page's records are chosen when it is fetched (an object with an
identical durable copy is left out) and sent; once Kafka acknowledges them they are durable and
the walk's checkpoint may pass the page.

Exactly-once (`CommittedPages`): a page waits until the walk's checkpoint passes it (pages
fetched ahead wait for the pages before them). Then, in the order they arrived, its records are
chosen against what is durable and become durable as they join the open commit unit, together
with the checkpoint that covers them: units commit in order, all or nothing, so a record in a
unit is as good as committed for every later unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from producer.ocpi.paging.pagination import WindowWalk
from producer.pull.held import HeldPages
from producer.pull.records import PageMessages
from producer.pull.selection import WindowSelection

Page = TypeVar("Page")


class AckedPages:
    """One window's at-least-once bookkeeping: fetched → sent → acknowledged → checkpoint."""

    def __init__(
        self, walk: WindowWalk, selection: WindowSelection, tally: set[int] | None = None
    ) -> None:
        self._walk = walk
        self._selection = selection
        self._tally = tally  # what this walk's pages listed, when counted apart

    def fetched(self, messages: PageMessages) -> PageMessages:
        """A page as fetched: counted as listed; the records to send now."""
        self._selection.listed(messages, self._tally)
        return self._selection.select(messages)

    def acknowledged(self, request_id: int, sent: PageMessages) -> int:
        """Kafka acknowledged a page's records: they are durable, and the checkpoint may pass the
        page. How many keys the window wrote for the first time."""
        new = self._selection.made_durable(sent)
        self._walk.on_acked(request_id)
        return new


@dataclass(frozen=True, slots=True)
class CoveredPage(Generic[Page]):
    """A page the walk's checkpoint now passes: the records it puts into the open unit (chosen
    against what is durable, and durable from now on), and how many keys the window writes for
    the first time."""

    page: Page
    records: PageMessages
    new: int


class CommittedPages(Generic[Page]):
    """One window pass's exactly-once bookkeeping: fetched → waiting for the checkpoint →
    covered by it → commit unit."""

    def __init__(
        self, walk: WindowWalk, selection: WindowSelection, tally: set[int] | None = None
    ) -> None:
        self._walk = walk
        self._selection = selection
        self._tally = tally
        # Pages fetched ahead of the window's unbroken run, waiting for the checkpoint to pass them.
        self._waiting: HeldPages[tuple[Page, PageMessages]] = HeldPages()

    def fetched(
        self, request_id: int, page: Page, messages: PageMessages
    ) -> list[CoveredPage[Page]]:
        """A page in hand: the pages the checkpoint now passes, in arrival order. The caller adds
        them to the unit with the walk's checkpoint before anything else can happen."""
        self._selection.listed(messages, self._tally)
        self._waiting.hold(request_id, (page, messages))
        self._walk.on_acked(request_id)
        covered: list[CoveredPage[Page]] = []
        for waited, records in self._waiting.release(self._walk.checkpoint_passed):
            chosen = self._selection.select(records)
            covered.append(CoveredPage(waited, chosen, self._selection.made_durable(chosen)))
        return covered

    def drop(self) -> int:
        """The pass ended: forget the pages still held (nothing commits them; a resume reads them
        again); how many there were."""
        return self._waiting.drop()
