"""`ocpi-puller broker` (issue 25): the embedded broker on loopback for trying the puller; it
prints its bootstrap address, serves a real Kafka client, keeps its data across a restart, and
Ctrl-C or SIGTERM leave no process of it behind."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import socket
import sys
from pathlib import Path

import psutil
import pytest

from producer.kafka.output import KafkaOutput
from producer.kafka.records import OutMessage, TopicSpec
from sandbox.broker import free_port
from tests.support import records, run_cli

COMMAND = [sys.executable, "-m", "producer.cli", "broker"]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in pids)  # fmt: skip


async def write_and_read(bootstrap: str, topic: str) -> list[bytes]:
    kafka = KafkaOutput(bootstrap, partitions=1)
    await kafka.start()
    try:
        await kafka.ensure_topics([TopicSpec(topic, compacted=False)])
        await kafka.send_and_wait(topic, [OutMessage(b"key", b"value", [])])
    finally:
        await kafka.stop()
    return [r.value for r in await records(bootstrap, topic)]


async def test_the_broker_serves_keeps_its_data_and_sigterm_stops_every_process(
    tmp_path: Path,
) -> None:
    port, data = free_port(), tmp_path / "broker-data"
    started = await asyncio.create_subprocess_exec(
        *COMMAND, "--port", str(port), "--data-dir", str(data),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert started.stdout is not None
    address = (await started.stdout.readline()).decode().strip()
    assert address == f"127.0.0.1:{port}"
    served = psutil.Process(started.pid).children(recursive=True)
    assert served  # the broker's own process
    assert await write_and_read(address, "tried") == [b"value"]
    started.send_signal(signal.SIGTERM)
    out, _ = await started.communicate()
    assert started.returncode == 0
    assert out.decode().strip().endswith(f"its data stays in {data}")
    assert gone([p.pid for p in served])
    assert port_is_free(port)

    # Started again on the same data: the topic and its record are back.
    again = await asyncio.create_subprocess_exec(
        *COMMAND, "--port", str(port), "--data-dir", str(data), "--output", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert again.stdout is not None
    line = (await again.stdout.readline()).decode()
    assert f'"bootstrap_servers":"127.0.0.1:{port}"' in line
    assert [r.value for r in await records(address, "tried")] == [b"value"]
    again.send_signal(signal.SIGINT)
    await again.communicate()
    assert again.returncode == 0


def test_ctrl_c_on_a_terminal_stops_the_broker_and_what_it_started(tmp_path: Path) -> None:
    port = free_port()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on a terminal, as someone trying the puller runs it
        os.execv(sys.executable, [*COMMAND, "--port", str(port), "--data-dir", str(tmp_path)])
    screen = b""
    while f"127.0.0.1:{port}".encode() not in screen:
        screen += os.read(fd, 65536)  # an OSError here: the command ended before serving
    served = [p.pid for p in psutil.Process(pid).children(recursive=True)]
    assert served
    os.write(fd, b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground group
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, screen.decode(errors="replace")
    assert gone(served)
    assert port_is_free(port)


@pytest.mark.parametrize("args", [("--port", "70000"), ("--port", "x")])
async def test_a_bad_port_is_one_line(args: tuple[str, ...]) -> None:
    code, _, err = await run_cli("broker", *args)
    assert code == 2
    assert err.startswith("ocpi-puller: config: argument --port: ")


async def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, _, err = await run_cli("broker", "--port", str(port), "--data-dir", str(tmp_path))
    assert code == 2
    assert err.strip() == (
        f"ocpi-puller: config: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another broker? --port)"
    )
