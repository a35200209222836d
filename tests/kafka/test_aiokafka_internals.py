"""aiokafka's internals as producer/kafka/aiokafka_internals.py uses them: every function it reads,
wraps, bypasses or replaces is the one it was checked against (a source hash), every attribute it
reaches for is there, and the installed aiokafka is in the checked range. An aiokafka upgrade
fails here, naming what to re-read, before it fails a pull."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import logging
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaTimeoutError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record._crecords import default_records as c_default_records
from aiokafka.structs import TopicPartition

from producer.kafka import aiokafka_internals
from producer.kafka.aiokafka_internals import (
    CHECKED_SOURCES,
    PYPROJECT_PIN,
    RecordAppender,
    fail_queued,
    fatal_error,
    sender_task,
    version_problem,
)
from producer.kafka.records import OutMessage

ROOT = Path(__file__).resolve().parents[2]


def source_of(name: str) -> str:
    """The source of a dotted aiokafka name (a module's function, a class's method or property)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
            break
        except ImportError:
            continue
    for attribute in parts[cut:]:
        if isinstance(found, type):
            found = inspect.getattr_static(found, attribute)
        else:
            found = getattr(found, attribute)
    if isinstance(found, property):
        found = found.fget
    return inspect.getsource(found)


@pytest.mark.parametrize("name", sorted(CHECKED_SOURCES))
def test_what_the_internals_rely_on_is_unchanged(name: str) -> None:
    digest = hashlib.sha256(source_of(name).encode()).hexdigest()
    assert digest == CHECKED_SOURCES[name], (
        f"aiokafka changed {name}: re-read producer/kafka/aiokafka_internals.py against it"
    )


def test_the_installed_aiokafka_is_in_the_checked_range() -> None:
    installed = importlib.metadata.version("aiokafka")
    assert version_problem(installed) is None


@pytest.mark.parametrize(
    ("installed", "in_range"),
    [("0.14.0", True), ("0.14.9", True), ("0.13.0", False), ("0.15.0", False), ("1.0", False)],
)
def test_a_version_outside_the_range_is_one_line(installed: str, in_range: bool) -> None:
    problem = version_problem(installed)
    assert (problem is None) == in_range
    if problem is not None:
        assert "\n" not in problem
        assert installed in problem
        assert "aiokafka_internals.py" in problem


def test_the_warning_is_logged_once(caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> None:
    monkeypatch.setattr(aiokafka_internals, "_warned", False)
    monkeypatch.setattr(aiokafka_internals.importlib.metadata, "version", lambda _: "0.15.1")
    with caplog.at_level(logging.WARNING, logger="ocpi_puller"):
        aiokafka_internals.warn_if_unchecked()
        aiokafka_internals.warn_if_unchecked()
    assert [r.getMessage() for r in caplog.records if "aiokafka 0.15.1" in r.getMessage()] == [
        version_problem("0.15.1")
    ]


def test_pyproject_pins_the_checked_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = [d for d in project["dependencies"] if d.startswith("aiokafka")]
    assert pins == [PYPROJECT_PIN]
    lowest, unchecked = aiokafka_internals.CHECKED_VERSIONS
    assert f">={'.'.join(map(str, lowest))}" in PYPROJECT_PIN
    assert f"<{'.'.join(map(str, unchecked[:2]))}" in PYPROJECT_PIN


async def test_the_attributes_reached_for_exist() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")  # never started: no socket
    assert isinstance(producer.client, AIOKafkaClient)
    assert callable(producer.client._on_connection_closed)
    accumulator = producer._message_accumulator
    assert isinstance(accumulator._batches, dict)
    assert isinstance(accumulator._pending_batches, set)
    assert sender_task(producer) is None
    assert fatal_error(producer) is None
    assert producer._txn_manager is None  # only a transactional producer has one
    transactional = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", transactional_id="t")
    manager = transactional._txn_manager
    assert manager._transaction_waiter is None
    assert not manager.is_fatal_error()
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")
    assert isinstance(consumer._client, AIOKafkaClient)


def test_lz4_is_looked_up_in_both_builders_module_globals() -> None:
    # What use_fast_lz4 replaces must be a global the builders read (the C one too).
    assert hasattr(c_default_records, "lz4_encode")
    assert "lz4_encode(data)" in source_of(
        "aiokafka.record.default_records._DefaultRecordBatchBuilderPy._maybe_compress"
    )


def test_the_record_appender_writes_to_the_c_builder_as_append_would() -> None:
    direct, public = (BatchBuilder(1 << 20, 0) for _ in range(2))
    assert type(direct._builder) is c_default_records.DefaultRecordBatchBuilder
    shared = [("h", b"1")]
    # With and without a numbered header of their own (made when appended).
    messages = [
        OutMessage(f"k{i}".encode(), b"v" * i, shared, None, "n" if i % 2 else None, i)
        for i in range(50)
    ]
    appender = RecordAppender(direct)
    assert appender._builder is not None  # the fast path is taken
    assert appender.add_all(messages, 0, len(messages), 1 << 20, lambda _: None) == len(messages)
    for message in messages:
        headers = message.record_headers()
        public.append(key=message.key, value=message.value, timestamp=None, headers=headers)
    assert direct.record_count() == public.record_count() == len(messages)
    assert direct.size() == public.size()
    read = [c_default_records.DefaultRecordBatch(b._build()) for b in (direct, public)]
    assert [[(r.key, r.value, r.headers) for r in batch] for batch in read] == [
        [(m.key, m.value, m.record_headers()) for m in messages]
    ] * 2
    assert shared == [("h", b"1")]  # the shared list is never extended


async def test_failing_queued_batches_retrieves_every_future() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")  # never started: no socket
    accumulator = producer._message_accumulator
    messages = [
        await accumulator.add_message(TopicPartition("t", p), b"k", b"v", timeout=1)
        for p in (0, 0, 1)
    ]
    batches = [b for queued in accumulator._batches.values() for b in queued]
    assert len(batches) == 2

    fail_queued(producer, KafkaTimeoutError("producer closed unflushed"))

    futures = [*messages, *(b.future for b in batches), *(b._drain_waiter for b in batches)]
    assert all(f.done() for f in futures)
    # What asyncio checks when a future is collected: False once its exception was read.
    # (Checked before reading any exception here, which would clear it.)
    assert not any(f._log_traceback for f in futures)
    assert all(isinstance(f.exception(), KafkaTimeoutError) for f in futures)
