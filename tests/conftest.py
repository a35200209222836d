"""Shared fixtures: a real Kafka-protocol broker and the sandbox partner, over real sockets.

The broker is the pinned embedded `noida-db` started on a free port for the session, unless
`KAFKA_BOOTSTRAP_SERVERS` points the same tests at a real Kafka. Each test writes under its own
topic prefix, so tests never see each other's messages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.broker import BrokerProcess, start_broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess | None]:
    """The session's broker process (None when an external Kafka is used)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    process = start_broker(Path(tmp_path_factory.mktemp("noida")))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def bootstrap(broker: BrokerProcess | None) -> str:
    """Bootstrap servers of the broker the tests use."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external
    assert broker is not None
    return broker.bootstrap


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def _no_otlp_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests decide themselves whether spans are exported; a developer's OTEL env must not leak in.
    for name in list(os.environ):
        if name.startswith(("OTEL_", "OCPI_PULLER_")):
            monkeypatch.delenv(name, raising=False)
