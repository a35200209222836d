"""`python -m bench.telemetry`: what an OTLP endpoint that is down costs a pull, as one JSON line.

Issue 25's target: at most 1 s in all, and one warning line. A pull of 100 tokens as a process,
three times per case: no OTLP; OTLP/HTTP to a collector that takes everything; OTLP/HTTP and
OTLP/gRPC to a port that refuses connections, and to a port that accepts them and never answers
(a silent collector). `added_s` is each case's median wall time less the median without OTLP
(it includes loading the exporters, which a working collector costs too: see `healthy_http`).
The whole-process times are as noisy as the machine; `exit_s` measures, in this process, just
what telemetry adds at the end of a run (`Telemetry.shutdown()` after 1,000 spans and a metric),
per case, median of the rounds.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import fresh_broker, run_pull, sandbox_process
from producer.observe.telemetry import setup_telemetry
from sandbox.broker import free_port

ROUNDS = 5
OBJECTS = 100


class Collector(http.server.BaseHTTPRequestHandler):
    """Takes every OTLP/HTTP export (an empty protobuf answer is a success)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def cases(silent_port: int, healthy_port: int) -> dict[str, dict[str, str]]:
    """Name → the OTEL environment of the pull."""
    refused = f"http://127.0.0.1:{free_port()}"
    silent = f"http://127.0.0.1:{silent_port}"
    return {
        "no_otlp": {},
        "healthy_http": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{healthy_port}"},
        "refused_http": {"OTEL_EXPORTER_OTLP_ENDPOINT": refused},
        "silent_http": {"OTEL_EXPORTER_OTLP_ENDPOINT": silent},
        "refused_grpc": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": refused,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
        "silent_grpc": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": silent,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
    }


def exit_cost(env: dict[str, str]) -> float:
    """Seconds `Telemetry.shutdown()` takes after a run's spans, with this OTEL environment."""
    os.environ.update(env)
    try:
        telemetry = setup_telemetry({"bench": "telemetry"})
        counter = telemetry.meter.create_counter("bench.objects")
        for index in range(1000):
            with telemetry.tracer.start_as_current_span("ocpi.page", attributes={"i": index}):
                counter.add(1)
        started = time.perf_counter()
        telemetry.shutdown()
        return time.perf_counter() - started
    finally:
        for variable in env:
            os.environ.pop(variable, None)


def main() -> None:
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    with socket.socket() as silent:  # listens, never accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        runs: dict[str, list[float]] = {}
        exits: dict[str, list[float]] = {}
        ports = (silent.getsockname()[1], collector.server_address[1])
        for _ in range(ROUNDS):
            for name, env in cases(*ports).items():
                exits.setdefault(name, []).append(exit_cost(env))
        with sandbox_process(OBJECTS, 0.0) as partner, fresh_broker() as broker:
            for round_no in range(ROUNDS):
                for name, env in cases(*ports).items():
                    os.environ.update(env)
                    try:
                        figure = run_pull(
                            partner, broker, "--topic-prefix", f"otlp-{name}-{round_no}"
                        )
                    finally:
                        for variable in env:
                            os.environ.pop(variable, None)
                    runs.setdefault(name, []).append(figure["seconds"])
    base = statistics.median(runs["no_otlp"])
    report: dict[str, Any] = {
        "objects": OBJECTS,
        "rounds": ROUNDS,
        "seconds": {name: statistics.median(times) for name, times in runs.items()},
        "added_s": {
            name: round(statistics.median(times) - base, 2)
            for name, times in runs.items()
            if name != "no_otlp"
        },
        "exit_s": {name: round(statistics.median(times), 3) for name, times in exits.items()},
        "runs": runs,
    }
    collector.shutdown()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
