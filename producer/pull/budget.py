"""The bytes a pull may have handed to Kafka and not yet seen acknowledged.

Counting pages alone does not bound memory: a page of locations can weigh as much as dozens of
pages of tokens. A page waits here until its bytes fit beside those in flight. One page larger
than the whole budget still goes when nothing else is in flight, so no page can wait forever.
Waiters are served in the order they came, so a large page is not overtaken for ever by small
ones.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    """At most `limit` bytes in flight (one larger page alone), handed out first come, first
    served."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a byte budget needs at least one byte")
        self.limit = limit
        self.in_flight = 0
        self.most_in_flight = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def fits(self, size: int) -> bool:
        """Whether `size` bytes may go now (nothing in flight, or room beside it)."""
        return self.in_flight == 0 or self.in_flight + size <= self.limit

    async def acquire(self, size: int) -> None:
        """Wait until `size` bytes may go, then count them in flight."""
        if not self._waiting and self.fits(size):
            self._take(size)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiting.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(size)  # granted as it was cancelled: give the bytes back
            elif entry in self._waiting:
                self._waiting.remove(entry)
                self._wake()  # a large waiter gone may let smaller ones behind it go
            raise

    def release(self, size: int) -> None:
        """`size` bytes are no longer in flight."""
        self.in_flight -= size
        self._wake()

    def _take(self, size: int) -> None:
        self.in_flight += size
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _wake(self) -> None:
        while self._waiting and self.fits(self._waiting[0][0]):
            size, future = self._waiting.popleft()
            if future.done():
                continue  # its waiter was cancelled
            self._take(size)
            future.set_result(None)
