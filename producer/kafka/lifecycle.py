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
        _fail_queued(producer, KafkaTimeoutError("producer closed unflushed"))
    # aiokafka's sender may trip over a batch failed under it (KeyError in its re-enqueue);
    # the producer is being abandoned, so that is of no consequence.
    with contextlib.suppress(KafkaError, OSError, KeyError):
        await producer.stop()


def _fail_queued(producer: AIOKafkaProducer, error: KafkaError) -> None:
    """Fail every batch the producer still queues. Nobody waits for them any more, so none of
    their futures may be logged as never retrieved."""
    accumulator = producer._message_accumulator
    batches = [b for queued in accumulator._batches.values() for b in queued]
    batches += list(accumulator._pending_batches)
    accumulator.fail_all(error)
    for batch in batches:
        # The batch's, its messages', and the one its drain would have waited on.
        futures = [batch.future, batch._drain_waiter, *(f for f, _ in batch._msg_futures)]
        for future in futures:
            # Retrieved now if failed already: a callback may never run if the loop ends first.
            if future.done():
                _retrieve(future)
            else:
                future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def fatal_error(producer: AIOKafkaProducer) -> BaseException | None:
    """Why a producer can no longer produce (its sender stopped: fenced, or a sequence the broker
    refused), or None. aiokafka checks a transactional producer's state with `assert`s, so a
    transaction is never begun or committed on a producer in this state."""
    task = producer._sender.sender_task
    if task is None or not task.done() or task.cancelled():
        return None
    error: BaseException | None = task.exception()
    return error


def halt_producer(producer: AIOKafkaProducer, error: KafkaError) -> None:
    """Stop a producer from sending anything more, at once: its sender ends, and every batch and
    the transaction it holds fail with `error` (it must still be closed).

    A broker that restarted without the transaction it was in the middle of (noida-db 0.2.3)
    accepts the old producer's retried batches into a transaction that then never ends, and
    read_committed consumers of that partition stop there for good. So a transactional producer
    that lost its connection never writes again; a new one (a new producer id) takes over.
    """
    task = producer._sender.sender_task
    if task is not None and not task.done():
        task.cancel()
    _fail_queued(producer, error)
    transaction = producer._txn_manager
    if transaction is not None and transaction._transaction_waiter is not None:
        if not transaction.is_fatal_error():
            transaction.fatal_error(error)
        transaction._transaction_waiter.add_done_callback(_retrieve)
