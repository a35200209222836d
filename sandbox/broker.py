"""The embedded Kafka-protocol broker (noida-db) for tests, the demo, benchmarks and chaos runs.

The binary is started directly (not through its console-script wrapper, whose PID would not be
the server's), on a free port, with a data directory, and is ready when it answers ApiVersions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def noida_binary() -> Path:
    """Path of the noida-db server binary shipped in its wheel (made executable)."""
    try:
        import noida_db
    except ImportError as error:
        raise RuntimeError(
            "the embedded broker (noida-db) is not installed: pip install 'ocpi-puller[broker]'"
        ) from error
    binary = Path(noida_db.__file__).parent / "noida-db"
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def answers_api_versions(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a Kafka broker at host:port answers an ApiVersions v0 request."""
    client_id = b"probe"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = sock.recv(8)
            return len(header) >= 8 and struct.unpack(">i", header[4:8])[0] == 1
    except OSError:
        return False


@dataclass(slots=True)
class BrokerProcess:
    """A running noida-db serving Kafka on 127.0.0.1:port."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    # In a process group of its own: a signal to the caller's group (Ctrl-C) does not reach it,
    # and stop() ends the whole group, whatever the broker may have started.
    own_group: bool = False

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers string."""
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (it writes its snapshot), then SIGKILL if it lingers; with `own_group`, to
        every process of its group."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        if self.own_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # anything it left behind

    def _signal(self, sig: signal.Signals) -> None:
        if self.own_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no snapshot, as a crash."""
        if self.process.poll() is None:
            self._signal(signal.SIGKILL)
        self.process.wait()

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill -9) and start again on the same port and data directory."""
        self.kill() if kill else self.stop()
        fresh = start_broker(self.data_dir, self.port, own_group=self.own_group)
        self.process = fresh.process


def start_broker(
    data_dir: Path, port: int | None = None, timeout: float = 20.0, *, own_group: bool = False
) -> BrokerProcess:
    """Start noida-db with only its Kafka listener and wait until it answers."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "noida.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        [
            str(noida_binary()),
            "start",
            "--only",
            "kafka",
            "--host",
            "127.0.0.1",
            "--kafka-port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        start_new_session=own_group,
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"noida-db exited ({process.returncode}); see {data_dir}/noida.log")
        if answers_api_versions("127.0.0.1", port):
            return BrokerProcess(process, port, data_dir, own_group)
        time.sleep(0.05)
    BrokerProcess(process, port, data_dir, own_group).stop(timeout=1)
    raise RuntimeError(f"noida-db did not answer on port {port} within {timeout} s")
