"""Pages a window has in hand but may not commit yet (exactly-once delivery). Pure.

A transaction commits a page only together with a window checkpoint that covers it, so that a
resume from the committed checkpoint never reads a committed page again. Pages fetched ahead of
the window's unbroken run (fan-out, out-of-order arrival) are held here until the walk says the
checkpoint has passed them (`WindowWalk.checkpoint_passed`), then released in the order they
arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class HeldPages(Generic[T]):
    """One window pass's pages waiting for the checkpoint, by request id, in arrival order."""

    def __init__(self) -> None:
        self._held: dict[int, T] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, request_id: int, page: T) -> None:
        """Keep a page until the checkpoint has passed its request."""
        self._held[request_id] = page

    def release(self, checkpoint_passed: Callable[[int], bool]) -> list[T]:
        """The held pages the checkpoint has now passed (removed), in arrival order."""
        ready = [request_id for request_id in self._held if checkpoint_passed(request_id)]
        return [self._held.pop(request_id) for request_id in ready]

    def drop(self) -> int:
        """Forget every held page (the pass ended without covering them); how many there were."""
        count = len(self._held)
        self._held.clear()
        return count
