"""A producer's life around aiokafka's internals: noticing lost connections, closing unflushed.

Both reach into aiokafka (pinned <0.15): the broker-restart and broker-outage tests cover them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaError, KafkaTimeoutError


def watch_connections(producer: AIOKafkaProducer, on_lost: Callable[[], None]) -> None:
    """Call `on_lost` whenever one of the producer's broker connections breaks or times out.

    aiokafka reconnects and resends by itself, so a broker restart shows nowhere else; but a
    restarting broker may have lost what it acknowledged just before. aiokafka binds this
    callback to each connection when it opens one, so it is replaced before `start()`. (An
    aiokafka internal, pinned <0.15 and covered by the broker-restart tests.)
    """
    client = producer.client
    closed = client._on_connection_closed

    def on_closed(conn: Any, reason: Any) -> None:
        if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
            on_lost()
        closed(conn, reason)

    client._on_connection_closed = on_closed


async def close_producer(producer: AIOKafkaProducer, *, flush_timeout_s: float) -> None:
    """Stop a producer without hanging on a broker that is gone.

    aiokafka's stop() flushes first, and a flush waits as long as the broker stays away; so
    flush for a bounded time, then fail what is left (as aiokafka's own sender does when it
    dies) so stop() can finish. What failed is unacknowledged: its pages are re-read on resume.
    """
    try:
        await asyncio.wait_for(asyncio.shield(producer.flush()), timeout=flush_timeout_s)
    except (TimeoutError, KafkaError, OSError):
        accumulator = producer._message_accumulator
        batches = [b for queued in accumulator._batches.values() for b in queued]
        batches += list(accumulator._pending_batches)
        accumulator.fail_all(KafkaTimeoutError("producer closed unflushed"))
        for batch in batches:  # nobody waits for these any more: do not let asyncio log them
            batch.future.add_done_callback(_retrieve)
    # aiokafka's sender may trip over a batch failed under it (KeyError in its re-enqueue);
    # the producer is being abandoned, so that is of no consequence.
    with contextlib.suppress(KafkaError, OSError, KeyError):
        await producer.stop()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
