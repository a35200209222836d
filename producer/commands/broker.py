"""`ocpi-puller broker`: the embedded Kafka-protocol broker (noida-db) on loopback, for trying
the puller on one machine; not for production.

It runs the broker's own binary (not noida-db's console script, whose Python wrapper would be a
second process holding the first) in a process group of its own, prints its bootstrap address,
and serves until Ctrl-C or SIGTERM, which stop every process of that group: nothing is left
serving. Data stays in `--data-dir` (default `.ocpi-puller-broker` under the working directory),
so a broker started again has every topic back.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from producer.commands.outcome import configure_logging, output_of
from producer.errors import ConfigError, KafkaUnavailableError
from sandbox.broker import BrokerProcess, start_broker

DEFAULT_PORT = 9092  # what `pull --bootstrap-servers` defaults to (localhost:9092)
DEFAULT_DATA_DIR = Path(".ocpi-puller-broker")
HOST = "127.0.0.1"


def run(args: argparse.Namespace) -> int:
    """Entry point of `ocpi-puller broker`; returns when the broker was stopped."""
    configure_logging(getattr(args, "log_level", None) or "WARNING")
    output = output_of(args)
    port: int = args.port
    data_dir = Path(args.data_dir) if args.data_dir else DEFAULT_DATA_DIR
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"--data-dir {data_dir} is a file, not a directory")
    _check_port_free(port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        broker = start_broker(data_dir, port, own_group=True)
    except RuntimeError as error:
        raise KafkaUnavailableError(f"the embedded broker did not start: {error}") from None
    try:
        _announce(broker, output)
        while not stop.is_set():
            if broker.process.poll() is not None:
                raise KafkaUnavailableError(
                    f"the embedded broker exited ({broker.process.returncode}); see "
                    f"{data_dir / 'noida.log'}"
                )
            stop.wait(0.2)
    finally:
        broker.stop()
    if output == "text":
        print(f"broker stopped; its data stays in {data_dir}", flush=True)
    return 0


def _check_port_free(port: int) -> None:
    """A port taken is one clear line, before anything starts."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            reason = error.strerror or "unusable"
            raise ConfigError(
                f"cannot listen on {HOST}:{port}: {reason.lower()} (another broker? --port)"
            ) from None


def _announce(broker: BrokerProcess, output: str) -> None:
    """The bootstrap address: one line (one JSON line with `--output json`)."""
    if output == "json":
        line = {
            "command": "broker",
            "bootstrap_servers": broker.bootstrap,
            "data_dir": str(broker.data_dir),
            "pid": broker.process.pid,
        }
        print(json.dumps(line, separators=(",", ":")), flush=True)
        return
    print(broker.bootstrap, flush=True)
    print(
        f"embedded Kafka (noida-db) at {broker.bootstrap}, data in {broker.data_dir}; "
        "Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
