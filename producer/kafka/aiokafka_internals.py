"""Every use of aiokafka's internals, in one place, checked against the aiokafka versions below.

aiokafka offers no public way to do these, and each matters for a pull (why, at each function):
* lz4 at LZ4's fast level: its record builders' `lz4_encode` replaced (`use_fast_lz4`);
* a broken broker connection noticed: its client's `_on_connection_closed` wrapped
  (`watch_connections`);
* a producer stopped without hanging or leaking futures: its `_message_accumulator` batches failed
  (`fail_queued`), its `_sender` task cancelled and its `_txn_manager` failed (`halt_producer`);
* a dead or fenced producer recognised before aiokafka `assert`s on it: `_sender.sender_task`
  (`fatal_error`) and `_txn_manager.is_fatal_error()`;
* fresh topic metadata from a consumer: its `_client.fetch_all_metadata()` (`fresh_metadata`);
* partitions added to a transaction without a record sent to them, so that its commit writes
  a marker there (`add_to_transaction`: `_txn_manager.maybe_add_partition_to_txn`);
* records appended straight to a batch's C record builder (`RecordAppender`: `BatchBuilder.
  _builder` and `_relative_offset`), a third cheaper per record than `BatchBuilder.append`.

`CHECKED_SOURCES` holds a hash of the source of every aiokafka function or class these rely on,
taken from the versions in `CHECKED_VERSIONS` (pyproject pins the same range):
tests/kafka/test_aiokafka_internals.py fails when an installed aiokafka differs in any of them. On
an upgrade: re-read what changed, drop what the new version makes unneeded, then update the
hashes, the range and the pin. An aiokafka outside the range is named in one warning at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaError

from producer.kafka.compression import fast_lz4_encode
from producer.kafka.records import OutMessage

log = logging.getLogger("ocpi_puller")

# The aiokafka releases every function here was read against: [lowest, first unchecked).
CHECKED_VERSIONS = ((0, 14, 0), (0, 15, 0))
PYPROJECT_PIN = "aiokafka[lz4,zstd]>=0.14.0,<0.15"

# SHA-256 of `inspect.getsource` of what the functions below read, wrap, bypass or replace, as
# aiokafka 0.14.0 has it (tests/kafka/test_aiokafka_internals.py recomputes them).
CHECKED_SOURCES = {
    # use_fast_lz4: the encoder replaced, and the Python builder's call of it by module name.
    "aiokafka.codec.lz4_encode": (
        "a27f1d0da7e18dcbace23e47eb3e9e32444ab2fd6290052a6be715607edcb6a9"
    ),
    "aiokafka.record.default_records._DefaultRecordBatchBuilderPy._maybe_compress": (
        "aec315ff19fb0cc6f01c68bfe0ed973b52f477d85482a90c62a3f3990de9a59b"
    ),
    # watch_connections: the callback wrapped, bound to each connection as it opens.
    "aiokafka.client.AIOKafkaClient._on_connection_closed": (
        "36f8c06a62fe343a37931d60230db17e53615ce50441c4eab6f8bff608e57e02"
    ),
    "aiokafka.client.AIOKafkaClient._get_conn": (
        "68ce5d8391719d3334eeee4c7d374d6ebb7eda5e6d402b2ada8c99725acae711"
    ),
    # fresh_metadata: what `topics()` reads.
    "aiokafka.client.AIOKafkaClient.fetch_all_metadata": (
        "8eeea5926b0ddbe252ea90f4cb7530fed30597c8275e9dbaac3e18b3cb235cd8"
    ),
    "aiokafka.consumer.consumer.AIOKafkaConsumer.topics": (
        "adb0d6bfca2eb397407ee7ed2d315f4165f3533af06f2ae8719a1f94188639b4"
    ),
    # The producer's parts (`_sender`, `_message_accumulator`, `_txn_manager`); its stop flushes
    # without a bound, so close_producer fails what is queued first.
    "aiokafka.producer.producer.AIOKafkaProducer.__init__": (
        "fd6f2966fb3dc883ffcd325fe27b2580f005c3246bec5f20fc8412b2134f6180"
    ),
    "aiokafka.producer.producer.AIOKafkaProducer.stop": (
        "43ef97147111893b2d336de3e8f7bd2ffbb8a55564705c932af9e9971e6c78f4"
    ),
    # fail_queued: the queued and in-flight batches, and the futures of each.
    "aiokafka.producer.message_accumulator.MessageAccumulator.__init__": (
        "eb57f3c1d5c7657b1fec503d4913013ac318547a9cc1e0daa17a37acbe28e94c"
    ),
    "aiokafka.producer.message_accumulator.MessageAccumulator.fail_all": (
        "f1e12e8100bfcb8ca8790485bef52098d20d022c5520f915d8db2c889102312c"
    ),
    "aiokafka.producer.message_accumulator.MessageBatch.__init__": (
        "6fd2fe1c2df19a7efe23a17a64e132aa1bea8a2f0a71a42b5342a670a5daec75"
    ),
    "aiokafka.producer.message_accumulator.MessageBatch.failure": (
        "719b2122c318e95569942823c4eb517231e8258d68872a644293eb21b1990e25"
    ),
    # RecordAppender: the builder, its offset, and the append it bypasses.
    "aiokafka.producer.message_accumulator.BatchBuilder.__init__": (
        "35b335f054d36d27c30733e8a3d3e55f80c9f85788ec833f471d7f11402440c7"
    ),
    "aiokafka.producer.message_accumulator.BatchBuilder.append": (
        "657d76f55157d9cac2981d5e76453c688425dbe14f271017a8904df4d5543a76"
    ),
    "aiokafka.producer.message_accumulator.BatchBuilder.close": (
        "084fb8748d27f9b6fcf9a11cf6581614f76fedcf7c2f882b1b6a632e784586ca"
    ),
    "aiokafka.producer.message_accumulator.BatchBuilder.closed": (
        "16b9c254eeecca092e7fa28973d9c4ab194115c9efcc55464d75445a0d4a4f1c"
    ),
    "aiokafka.producer.message_accumulator.BatchBuilder.record_count": (
        "3a3d4948a3b70702ce44166532f9032fa571f26ca90b7e2f84a777d119090141"
    ),
    # sender_task, fatal_error, halt_producer: the sender's task and what its end fails.
    "aiokafka.producer.sender.Sender.start": (
        "ef0a0cbbf1f69e7d67a73d34ab5b9175b0675bfd2c068a6ec09a04101b58f662"
    ),
    "aiokafka.producer.sender.Sender._fail_all": (
        "5a67e3b6f87be0c51cd7155cd6c162062b0c63a8cbd70433de1f5dd801c09ec5"
    ),
    "aiokafka.producer.sender.Sender.sender_task": (
        "2aa81bcdcedb2d20fe10689f60156f99e09b11c09749d832b66143b5fd1cf8c7"
    ),
    # transaction_failed, halt_producer: the transaction manager's state.
    "aiokafka.producer.transaction_manager.TransactionManager.__init__": (
        "0d4f62dbcd186a33dfc164452dbbced3ee2bd8de6f76b0226101953aea0ed49a"
    ),
    "aiokafka.producer.transaction_manager.TransactionManager.is_fatal_error": (
        "7ac04ee86cfa38d634126c5133bb8913a9d4a36c714e505fc756ae52ea7d52a7"
    ),
    "aiokafka.producer.transaction_manager.TransactionManager.fatal_error": (
        "8e9fd08dc50042c47c2d328651b03c25d6410e52ab12cf0c15dc5e34d100cf59"
    ),
    # add_to_transaction: a partition added as a send adds it; the sender adds the pending
    # partitions before it ends the transaction, and sends EndTxn for any transaction with one.
    "aiokafka.producer.transaction_manager.TransactionManager.maybe_add_partition_to_txn": (
        "e0a118be379a7f754f89ee00eebc7399f73a216698394ffa4de31cdfaefba032"
    ),
    "aiokafka.producer.transaction_manager.TransactionManager.is_empty_transaction": (
        "124ac059b2a77809e64e360ce7a26b092e1191f5b5757a90b75480b87ecf2761"
    ),
    "aiokafka.producer.sender.Sender._maybe_do_transactional_request": (
        "71227a8a4d9ca80d59f540f0b5aeadbfa81de4867c4616f533e0b8fad4e798eb"
    ),
    "aiokafka.producer.sender.Sender._do_txn_commit": (
        "8263eaebb7c30ea1855413881316f565be5db9e0d48209d105da568dc9e25aff"
    ),
}

_warned = False


def version_problem(installed: str) -> str | None:
    """One line saying why `installed` aiokafka is outside the checked versions, or None."""
    try:
        version = tuple(int(part) for part in installed.split(".")[:3])
    except ValueError:
        version = ()
    lowest, unchecked = CHECKED_VERSIONS
    if len(version) == 3 and lowest <= version < unchecked:
        return None
    return (
        f"aiokafka {installed} is installed, but the puller's use of its internals was checked "
        f"against {_dotted(lowest)} up to (not including) {_dotted(unchecked)}: see "
        "producer/kafka/aiokafka_internals.py"
    )


def warn_if_unchecked() -> None:
    """Log, once per process, when the installed aiokafka is outside the checked versions."""
    global _warned
    if _warned:
        return
    _warned = True
    problem = version_problem(importlib.metadata.version("aiokafka"))
    if problem is not None:
        log.warning("%s", problem)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


# -- compression -------------------------------------------------------------------------------


def use_fast_lz4() -> None:
    """Make aiokafka's record batch builders (C and pure Python) compress lz4 with
    `fast_lz4_encode`: aiokafka 0.14 compresses at level 9 (LZ4-HC) and offers no setting for it
    (see compression.py). Both builders look `lz4_encode` up in their module's globals."""
    from aiokafka.record import default_records

    default_records.lz4_encode = fast_lz4_encode
    with contextlib.suppress(ImportError):  # the C builder, when aiokafka has it
        from aiokafka.record._crecords import default_records as c_default_records

        c_default_records.lz4_encode = fast_lz4_encode


# -- connections -------------------------------------------------------------------------------


def watch_connections(producer: AIOKafkaProducer, on_lost: Callable[[], None]) -> None:
    """Call `on_lost` whenever one of the producer's broker connections breaks or times out.

    aiokafka reconnects and resends by itself, so a broker restart shows nowhere else; but a
    restarting broker may have lost what it acknowledged just before. aiokafka's client binds
    its `_on_connection_closed` to each connection as it opens it (`_get_conn`), so the wrapper
    is put in place before `start()`.
    """
    client = producer.client
    closed = client._on_connection_closed

    def on_closed(conn: Any, reason: Any) -> None:
        if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
            on_lost()
        closed(conn, reason)

    client._on_connection_closed = on_closed


async def fresh_metadata(consumer: AIOKafkaConsumer) -> Any:
    """The cluster's metadata fetched now (what `consumer.topics()` reads, partitions included).

    Not `consumer.partitions_for_topic`: that answers from the metadata cached at start."""
    return await consumer._client.fetch_all_metadata()


# -- a producer's sender, queue and transaction ------------------------------------------------


def fail_queued(producer: AIOKafkaProducer, error: KafkaError) -> None:
    """Fail every batch the producer still queues. Nobody waits for them any more, so none of
    their futures may be logged as never retrieved (aiokafka's `fail_all` leaves its futures
    for their waiters to retrieve)."""
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


def sender_task(producer: AIOKafkaProducer) -> asyncio.Task[Any] | None:
    """The task that sends the producer's batches (None before start)."""
    task: asyncio.Task[Any] | None = producer._sender.sender_task
    return task


def fatal_error(producer: AIOKafkaProducer) -> BaseException | None:
    """Why a producer can no longer produce (its sender stopped: fenced, or a sequence the broker
    refused), or None. aiokafka checks a transactional producer's state with `assert`s, so a
    transaction is never begun or committed on a producer in this state."""
    task = sender_task(producer)
    if task is None or not task.done() or task.cancelled():
        return None
    error: BaseException | None = task.exception()
    return error


def transaction_failed(producer: AIOKafkaProducer) -> bool:
    """Whether a transactional producer's transaction manager is in its fatal state."""
    return bool(producer._txn_manager.is_fatal_error())


def halt_producer(producer: AIOKafkaProducer, error: KafkaError) -> None:
    """Stop a producer from sending anything more, at once: its sender ends, and every batch and
    the transaction it holds fail with `error` (it must still be closed).

    A broker that restarted without the transaction it was in the middle of (noida-db 0.2.3)
    accepts the old producer's retried batches into a transaction that then never ends, and
    read_committed consumers of that partition stop there for good. So a transactional producer
    that lost its connection never writes again; a new one (a new producer id) takes over.
    """
    task = sender_task(producer)
    if task is not None and not task.done():
        task.cancel()
    fail_queued(producer, error)
    transaction = producer._txn_manager
    if transaction is not None and transaction._transaction_waiter is not None:
        if not transaction.is_fatal_error():
            transaction.fatal_error(error)
        transaction._transaction_waiter.add_done_callback(_retrieve)


def add_to_transaction(producer: AIOKafkaProducer, partitions: Iterable[TopicPartition]) -> None:
    """Add `partitions` to the producer's open transaction without a record sent to them: its
    end then writes a marker to each. (aiokafka adds a partition only when a record is sent.)"""
    for partition in partitions:
        producer._txn_manager.maybe_add_partition_to_txn(partition)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# -- appending records -------------------------------------------------------------------------


class RecordAppender:
    """Appends records to one aiokafka batch: straight to its C record builder when the batch
    has one (`BatchBuilder._builder`, whose next offset is `_relative_offset`; the Python
    `BatchBuilder.append` around it costs a third of a record's append), else through the
    public `append`."""

    __slots__ = ("_batch", "_builder", "_offset")

    def __init__(self, batch: Any) -> None:
        self._batch = batch
        builder = getattr(batch, "_builder", None)
        offset = getattr(batch, "_relative_offset", None)
        usable = builder is not None and isinstance(offset, int) and not batch.closed()
        self._builder = builder if usable else None
        self._offset: int = offset if isinstance(offset, int) and usable else 0

    def add_all(
        self,
        messages: Sequence[OutMessage],
        index: int,
        end: int,
        near_limit: int,
        check: Callable[[OutMessage], None],
    ) -> int:
        """Append `messages[index:end]` until one does not fit (the batch is then closed);
        returns the position of the first one not appended. `check` is called on each message
        whose key and value pass `near_limit` bytes."""
        builder = self._builder
        if builder is None:
            append = self._batch.append
            while index < end:
                message = messages[index]
                key, value = message.key, message.value
                if len(key) + (0 if value is None else len(value)) > near_limit:
                    check(message)
                headers = message.record_headers()
                if append(key=key, value=value, timestamp=None, headers=headers) is None:
                    break
                index += 1
            return index
        offset, append = self._offset, builder.append
        try:
            while index < end:
                message = messages[index]
                key, value = message.key, message.value
                if len(key) + (0 if value is None else len(value)) > near_limit:
                    check(message)
                numbered = message.numbered
                headers = (
                    message.headers
                    if numbered is None
                    else [*message.headers, (numbered, b"%d" % message.number)]
                )  # (record_headers, inlined: this loop runs once per record)
                if append(offset, None, key, value, headers) is None:
                    self._batch.close()
                    break
                offset += 1
                index += 1
        finally:
            # The batch's record count, however the loop ended.
            self._offset = self._batch._relative_offset = offset
        return index
