"""Which brokers the Kafka-facing tests run against, and how each is started.

Every test that asks for the `broker_kind` fixture (directly, or through `broker` or
`bootstrap`) runs once per kind:

* `noida`: the embedded noida-db (always);
* `kafka-4.4`: Apache Kafka 4.x, KRaft (whenever Java and Maven are installed);
* `kafka-3.9`: Apache Kafka 3.9, added by `KAFKA_VERSIONS=3.9` (or `all`).

`KAFKA_VERSIONS=none` leaves Apache Kafka out; `KAFKA_VERSIONS=4.4` is the default.
`KAFKA_BOOTSTRAP_SERVERS` points everything at one external broker instead (kind `external`).

A test that holds on one kind only says which and why: `@only_broker("apache", reason=...)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import pytest

from sandbox.apache_kafka.broker import ApacheKafka, start_apache_kafka
from sandbox.apache_kafka.classpath import missing_tools, versions
from sandbox.broker import start_broker

NOIDA = "noida"
EXTERNAL = "external"
# `--brokers`: all (default), noida (the embedded broker and every test that needs none), or
# apache (the Kafka-facing tests on Apache Kafka only): `make test` runs the two halves at once.
FAMILIES = ("all", "noida", "apache")
_family = "all"


def choose_family(family: str) -> None:
    """Which half of the suite this session runs (`--brokers`)."""
    global _family
    if family not in FAMILIES:
        raise pytest.UsageError(f"--brokers must be one of {', '.join(FAMILIES)}")
    _family = family


def runs_without_broker() -> bool:
    """Whether tests that reach no broker run in this session (not in the apache half)."""
    return _family != "apache"


class RunningBroker(Protocol):
    """What tests do with a broker they started."""

    @property
    def bootstrap(self) -> str: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...

    def restart(self, *, kill: bool = False) -> None: ...


def apache_lines() -> list[str]:
    """The Apache Kafka release lines asked for by KAFKA_VERSIONS."""
    wanted = os.environ.get("KAFKA_VERSIONS", "").strip().lower()
    pinned = versions()
    default = max(pinned, key=lambda line: tuple(int(p) for p in line.split(".")))
    if wanted in ("", "default"):
        return [default]
    if wanted == "none":
        return []
    if wanted == "all":
        return sorted(pinned, reverse=True)
    lines = [default]
    for line in wanted.replace(" ", ",").split(","):
        if line and line not in pinned:
            raise pytest.UsageError(
                f"KAFKA_VERSIONS={wanted}: {line} is not pinned (pinned: {sorted(pinned)})"
            )
        if line and line not in lines:
            lines.append(line)
    return lines


def apache_skipped_because() -> str | None:
    """Why the Apache Kafka half does not run on this machine, or None."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or _family == "noida":
        return None
    if not apache_lines():
        return None
    return missing_tools()


def broker_kinds() -> list[str]:
    """Every broker kind this session runs the Kafka-facing tests against."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return [EXTERNAL]
    kinds = [NOIDA] if _family != "apache" else []
    if missing_tools() is None and _family != "noida":
        kinds += [f"kafka-{line}" for line in apache_lines()]
    return kinds


def is_apache(kind: str) -> bool:
    return kind.startswith("kafka-")


def start_kind(kind: str, data_dir: Path) -> RunningBroker:
    """Start a broker of `kind` with its data under `data_dir`."""
    if is_apache(kind):
        broker: ApacheKafka = start_apache_kafka(data_dir, kind.removeprefix("kafka-"))
        return broker
    return start_broker(data_dir)


def only_broker(family: str, *, reason: str) -> pytest.MarkDecorator:
    """Run a Kafka-facing test on one family of brokers only (`noida` or `apache`), saying why."""
    if family not in (NOIDA, "apache"):
        raise ValueError(f"unknown broker family {family!r}")
    return pytest.mark.only_broker(family, reason=reason)


def kinds_for(marker: pytest.Mark | None) -> list[str]:
    """The kinds a test runs on, given its `only_broker` marker (if any)."""
    kinds = broker_kinds()
    if marker is None or kinds == [EXTERNAL]:
        return kinds
    family = marker.args[0]
    return [k for k in kinds if (family == "apache") == is_apache(k)]
