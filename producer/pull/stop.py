"""A stop asked for by a signal (SIGTERM is how Kubernetes stops a Job; SIGINT is Ctrl-C).

The first signal drains: pulls that are reading windows stop fetching, wait for Kafka to
acknowledge (or commit) what they already sent, checkpoint it, and end with `pull_failed`
(reason `interrupted`, resumable), so a resume has nothing to read twice. Pulls not reading
windows yet (discovery, planning, waiting for their turn) stop at once. A drain that takes longer
than its bound (`--kafka-deadline-s`) is cut short; a second signal stops everything at once.
Either way the run prints its summary line and exits 130.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from producer.errors import InterruptedPullError


@dataclass(slots=True)
class StopRequest:
    """Whether a signal asked this run to stop, and the tasks it stops."""

    signal: str | None = None
    pulls: set[asyncio.Task[object]] = field(default_factory=set)
    # Pulls reading windows: they drain instead of being cancelled.
    draining: set[asyncio.Task[object]] = field(default_factory=set)
    # The longest a drain may take before the draining pulls are cancelled.
    drain_s: float = 300.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def requested(self) -> bool:
        """A signal came."""
        return self.signal is not None

    @property
    def stopping(self) -> asyncio.Event:
        """Set by the first signal: windows stop fetching and drain."""
        return self._stopping

    def error(self) -> InterruptedPullError:
        """What an interrupted pull reports (before any pull began: that nothing was pulled)."""
        by = self.signal or "a signal"
        if not self.pulls:
            return InterruptedPullError(f"stopped by {by} before any pull began: nothing pulled")
        return InterruptedPullError(
            f"stopped by {by}; checkpoints are saved: run again with the same --pull-id to resume"
        )

    def stop(self, signal: str, run: asyncio.Task[object] | None) -> None:
        """The first signal drains the pulls reading windows and stops the others (or the run,
        before any pull started); a second one stops the run at once."""
        if self.requested or not self.pulls:
            self.signal = self.signal or signal
            if run is not None:
                run.cancel()
            return
        self.signal = signal
        self._stopping.set()
        for task in self.pulls - self.draining:
            task.cancel()
        if self.draining:
            asyncio.get_running_loop().call_later(self.drain_s, self._cut_short)

    def _cut_short(self) -> None:
        for task in self.draining:
            task.cancel()

    def caught(self) -> bool:
        """In an `except CancelledError`: whether this stop caused it, in which case the
        current task is uncancelled so the pull can still report and flush."""
        if not self.requested:
            return False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True
