"""Shared fixtures: real Kafka brokers and the sandbox partner, over real sockets.

Kafka-facing tests run once per broker kind (tests/brokers.py): the embedded noida-db and Apache
Kafka (KRaft) started from its Maven jars, each once per session on free ports, unless
`KAFKA_BOOTSTRAP_SERVERS` points the same tests at one external Kafka. Each test writes under its
own topic prefix, so tests never see each other's messages.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import (
    EXTERNAL,
    FAMILIES,
    NOIDA,
    RunningBroker,
    apache_skipped_because,
    choose_family,
    kinds_for,
    runs_without_broker,
    start_kind,
)

PLACEHOLDER = "no-broker"  # a single-family test in a run without that family


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--brokers",
        default="all",
        choices=FAMILIES,
        help="all: every test on every broker; noida: the embedded broker and the tests that "
        "need none; apache: the Kafka-facing tests on Apache Kafka only",
    )


def pytest_configure(config: pytest.Config) -> None:
    choose_family(config.getoption("--brokers"))
    config.addinivalue_line(
        "markers",
        "only_broker(family, reason): a Kafka-facing test that holds on one broker family only "
        "(noida or apache), and why",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One run per broker kind for every test that reaches a broker (see tests/brokers.py).
    if "broker_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("only_broker")
    if marker is not None and "reason" not in marker.kwargs:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: only_broker needs a reason")
    kinds = kinds_for(marker)
    params = [pytest.param(kind, id=kind) for kind in kinds]
    if not params:
        why = apache_skipped_because() or "no broker of that family in this run"
        params = [pytest.param(PLACEHOLDER, id=PLACEHOLDER, marks=pytest.mark.skip(reason=why))]
    metafunc.parametrize("broker_kind", params, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def kind(item: pytest.Item) -> str | None:
        callspec = getattr(item, "callspec", None)
        return None if callspec is None else callspec.params.get("broker_kind")

    if config.getoption("--brokers") == "all":
        return
    # One half of the suite: the apache half only runs tests that reach a broker, and neither
    # half lists the other's single-family tests as skipped (the other half runs them).
    wanted = runs_without_broker()
    keep = [
        item
        for item in items
        if kind(item) != PLACEHOLDER
        and (wanted or "broker_kind" in getattr(item, "fixturenames", ()))
    ]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str | None:
    why = apache_skipped_because()
    if why is None:
        return None
    return f"Apache Kafka half skipped: {why}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    why = apache_skipped_because()
    if why is not None:
        terminalreporter.write_line(f"Apache Kafka half skipped: {why}")


@pytest.fixture(scope="session")
def broker_kind(request: pytest.FixtureRequest) -> str:
    """The kind of broker this run of the test talks to (noida, kafka-4.4, kafka-3.9)."""
    kind: str = request.param
    return kind


@pytest.fixture(scope="session")
def broker(broker_kind: str) -> Iterator[RunningBroker | None]:
    """The session's broker of this kind (None when an external Kafka is used)."""
    if broker_kind == EXTERNAL:
        yield None
        return
    # Not under pytest's basetemp: pytest prunes old basetemps of the same user, which other
    # test sessions on this machine create, and a broker's log dirs must outlive the session.
    data_dir = Path(tempfile.mkdtemp(prefix=f"ocpi-{broker_kind}-"))
    process = start_kind(broker_kind, data_dir)
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def bootstrap(broker: RunningBroker | None) -> str:
    """Bootstrap servers of the broker the tests use."""
    if broker is None:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    return broker.bootstrap


@pytest.fixture
def restartable_broker(
    broker_kind: str, broker: RunningBroker | None, tmp_path: Path
) -> Iterator[RunningBroker]:
    """A broker this test may stop, kill and restart: a fresh noida-db of its own (it starts in
    milliseconds), or the session's Apache Kafka (it takes seconds; tests run one at a time)."""
    if broker_kind == EXTERNAL or broker is None:
        pytest.skip("stops and restarts its broker: not an external one")
    if broker_kind != NOIDA:
        yield broker
        if not _running(broker):
            broker.restart()
        return
    own = start_kind(NOIDA, tmp_path / "kafka")
    try:
        yield own
    finally:
        own.stop()


def _running(broker: RunningBroker) -> bool:
    process = getattr(broker, "process", None)
    return process is None or process.poll() is None


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
