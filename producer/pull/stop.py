"""A stop asked for by a signal (SIGTERM is how Kubernetes stops a Job; SIGINT is Ctrl-C).

The first signal stops the pulls: each records `pull_failed` (reason `interrupted`, resumable)
and returns its summary, so the run still prints its summary line and exits 130. A second
signal stops at once.
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

    @property
    def requested(self) -> bool:
        """A signal came."""
        return self.signal is not None

    def error(self) -> InterruptedPullError:
        """What an interrupted pull reports."""
        return InterruptedPullError(
            f"stopped by {self.signal or 'a signal'}; checkpoints are saved: run again with the "
            "same --pull-id to resume"
        )

    def stop(self, signal: str, run: asyncio.Task[object] | None) -> None:
        """The first signal stops the pulls (or the run, before any pull started); a second
        one stops the run at once."""
        if self.requested or not self.pulls:
            self.signal = self.signal or signal
            if run is not None:
                run.cancel()
            return
        self.signal = signal
        for task in self.pulls:
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
