"""A producer's life: the one in use and its renewal when the broker forgets it, and closing it
unflushed (through aiokafka's internals, see aiokafka_internals.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from producer.errors import KafkaUnavailableError
from producer.kafka.aiokafka_internals import fail_queued, watch_connections
from producer.retry import RetryPolicy, retry_until

log = logging.getLogger("ocpi_puller")

# Waits between attempts to start a new producer while the broker is away, until the deadline.
PRODUCER_RENEWAL = RetryPolicy(base_delay_s=0.5, max_delay_s=10.0)


class RenewableProducer:
    """The idempotent producer in use, replaced by a new one (a new producer id, the next
    generation) when the broker no longer knows it. The outboxes' `ProducerSource`."""

    def __init__(
        self, options: dict[str, Any], *, on_lost: Callable[[], None], deadline_s: float
    ) -> None:
        self._options = options
        self._on_lost = on_lost
        self._deadline_s = deadline_s
        self._producer: AIOKafkaProducer | None = None
        self._generation = 0
        self._renewal: asyncio.Task[None] | None = None
        self._rng = random.Random()

    @property
    def producer(self) -> AIOKafkaProducer:
        """The producer in use."""
        assert self._producer is not None, "start() first"
        return self._producer

    async def start(self) -> None:
        """Start the first producer (raises what aiokafka raises; nothing is left open)."""
        self._producer = await self._started()

    async def _started(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._options)
        watch_connections(producer, self._on_lost)
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(KafkaError, OSError):
                await producer.stop()
            raise
        return producer

    def current(self) -> tuple[AIOKafkaProducer, int]:
        """The producer in use and its generation."""
        return self.producer, self._generation

    async def settled(self) -> None:
        """Return once no renewal is under way; a renewal that failed for good (the broker away
        past the deadline) raises its KafkaUnavailableError."""
        renewal = self._renewal
        if renewal is not None:
            await asyncio.shield(renewal)

    def identity_lost(self, error: BaseException, generation: int) -> None:
        """The broker no longer knows the producer of `generation`: replace it, once."""
        if self._producer is None or generation != self._generation:
            return  # replaced already, or stopped
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self._renew(error))
            self._renewal.add_done_callback(_retrieve)

    async def _renew(self, error: BaseException) -> None:
        """What the old producer had not acknowledged fails as it closes, and the outboxes
        deliver those batches again through the new one. A broker still away is tried again
        until the deadline."""
        log.warning("Kafka lost this producer's identity (%s): using a new producer", error)
        deadline = time.monotonic() + self._deadline_s

        async def started() -> AIOKafkaProducer:
            async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                return await self._started()

        def unavailable(failure: BaseException) -> KafkaUnavailableError:
            return KafkaUnavailableError(
                f"Kafka unavailable for {self._deadline_s:.0f} s (a new producer: "
                f"{type(failure).__name__})"
            )

        fresh = await retry_until(
            PRODUCER_RENEWAL,
            started,
            retry_on=(KafkaError, OSError),
            give_up=unavailable,
            rng=self._rng,
            deadline=deadline,
        )
        old, self._producer = self.producer, fresh
        self._generation += 1
        await close_producer(old, flush_timeout_s=1.0)  # broken: do not wait for it

    async def stop(self, *, flush_timeout_s: float) -> None:
        """End any renewal and close the producer (flushing for at most `flush_timeout_s`)."""
        if self._renewal is not None and not self._renewal.done():
            self._renewal.cancel()
            await asyncio.gather(self._renewal, return_exceptions=True)
        producer, self._producer = self._producer, None
        if producer is not None:
            await close_producer(producer, flush_timeout_s=flush_timeout_s)


async def close_producer(producer: AIOKafkaProducer, *, flush_timeout_s: float) -> None:
    """Stop a producer without hanging on a broker that is gone.

    aiokafka's stop() flushes first, and a flush waits as long as the broker stays away; so
    flush for a bounded time, then fail what is left (as aiokafka's own sender does when it
    dies) so stop() can finish. What failed is unacknowledged: its pages are re-read on resume.
    """
    try:
        await asyncio.wait_for(asyncio.shield(producer.flush()), timeout=flush_timeout_s)
    except (TimeoutError, KafkaError, OSError):
        fail_queued(producer, KafkaTimeoutError("producer closed unflushed"))
    # aiokafka's sender may trip over a batch failed under it (KeyError in its re-enqueue);
    # the producer is being abandoned, so that is of no consequence.
    with contextlib.suppress(KafkaError, OSError, KeyError):
        await producer.stop()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
