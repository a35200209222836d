"""Telemetry that never slows or shouts (issue 25): an OTLP endpoint that refuses or never
answers costs the pull one warning line (no `ERROR Failed to export` lines of the SDK) and a
bounded flush at exit (measured by `python -m bench.telemetry`); a protocol the puller cannot
speak is a config error. The puller runs as a process, configured by the standard environment."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from sandbox.broker import free_port
from tests.support import TOKEN, run_cli, sandbox


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


async def pull_with(bootstrap: str, prefix: str, otel: dict[str, str]) -> tuple[int, str, str]:
    async with sandbox(sizes={"tokens": 100}) as (base, _):
        return await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--output", "json",
            env={"OCPI_PULLER_TOKEN": TOKEN, **otel},
        )  # fmt: skip


def otlp_lines(err: str) -> list[str]:
    for shout in (" ERROR ", "Failed to export", "Transient error"):
        assert shout not in err, err
    return [line for line in err.splitlines() if "OTLP" in line]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_a_refused_endpoint_is_one_warning_line(
    bootstrap: str, prefix: str, protocol: str
) -> None:
    port = free_port()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
    }
    code, out, err = await pull_with(bootstrap, prefix, otel)
    assert code == 0, err
    assert json.loads(out)["objects_emitted"] == 100
    (line,) = otlp_lines(err)
    assert " WARNING " in line
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in line
    assert line.endswith("spans and metrics of this run are dropped")


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_an_endpoint_that_never_answers_is_one_warning_line(
    bootstrap: str, prefix: str, protocol: str, silent_port: int
) -> None:
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
    }
    code, out, err = await pull_with(bootstrap, prefix, otel)
    assert code == 0, err
    assert json.loads(out)["complete"] is True
    (line,) = otlp_lines(err)
    assert "it did not take the last export within" in line


@pytest.mark.parametrize(
    "variable",
    ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"],
)
async def test_an_unsupported_protocol_is_a_config_error(variable: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", variable: "thrift"}
    args = ("pull", "--url", "http://x.example/ocpi/versions", "--module", "tokens",
            "--token", "t", "--bootstrap-servers", "127.0.0.1:9", "--output", "json")  # fmt: skip
    code, out, err = await run_cli(*args, env=env)
    assert code == 2
    assert err.splitlines() == [
        f"ocpi-puller: config: {variable}='thrift' is not supported: use http/protobuf or grpc"
    ]
    assert json.loads(out)["error_kind"] == "config"
