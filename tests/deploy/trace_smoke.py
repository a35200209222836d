"""`make trace-smoke`: a pull's trace in a real Jaeger, read back from Jaeger's query API.

Opt-in, never part of `make test`. Needs Go. It:

1. builds Jaeger v2 (`cmd/jaeger` of the Go module github.com/jaegertracing/jaeger v1.75.0,
   pinned with every dependency in tests/deploy/jaeger/go.mod and go.sum) from the Go module
   proxy into `~/.cache/ocpi-puller/jaeger/`, once (the build takes minutes on two cores; the
   time is printed);
2. starts it with in-memory storage, its OTLP/HTTP receiver and query API on free loopback ports;
3. runs `ocpi-puller pull` as its own process against the sandbox partner and the embedded
   broker, exporting over OTLP/HTTP to it;
4. reads the pull's trace back from `/api/traces`: one `ocpi.page` span per page the sandbox
   served, `kafka.produce` spans, and the attributes docs/operations.md lists; prints one JSON
   line and exits 0 only if all of it is there.

    python -m tests.deploy.trace_smoke [--tokens N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from sandbox.app import running_sandbox
from sandbox.broker import free_port, start_broker
from tests.deploy.wiring import ROOT
from tests.support import TOKEN, sandbox_config

MODULE_DIR = ROOT / "tests" / "deploy" / "jaeger"
JAEGER = "github.com/jaegertracing/jaeger/cmd/jaeger"
VERSION = "v1.75.0"  # the Go module's tag of Jaeger v2's binary (go.mod pins it)
# docs/operations.md's `ocpi.page` attributes: on every page span, and on some (a planning probe
# belongs to no window; X-Total-Count only when the partner sends it).
PAGE_ATTRIBUTES = (
    "url.full",
    "ocpi.attempt",
    "http.response.status_code",
    "ocpi.status_code",
    "ocpi.object_count",
    "ocpi.partner",
)
SOME_PAGE_ATTRIBUTES = (
    "ocpi.window",
    "ocpi.offset",
    "ocpi.limit",
    "ocpi.total_count",
    "ocpi.x_limit",
)
PULL_ATTRIBUTES = ("ocpi.partner", "ocpi.pull_id", "ocpi.complete", "ocpi.objects_emitted")
PRODUCE_ATTRIBUTES = ("messaging.system", "messaging.destination.name")


def say(text: str) -> None:
    print(f"trace-smoke: {text}", file=sys.stderr, flush=True)


def build_jaeger() -> tuple[Path, float | None]:
    """The Jaeger binary, built if not cached; and how long the build took (None: cached)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    binary = cache / "ocpi-puller" / "jaeger" / f"jaeger-{VERSION}"
    if binary.exists():
        return binary, None
    if shutil.which("go") is None:
        raise SystemExit("trace-smoke: Go is not installed; Jaeger is built from its Go module")
    binary.parent.mkdir(parents=True, exist_ok=True)
    say(f"building Jaeger {VERSION} from the Go module proxy (minutes, once)")
    started = time.monotonic()
    result = subprocess.run(
        ["go", "build", "-o", str(binary), JAEGER],
        cwd=MODULE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"trace-smoke: building Jaeger failed:\n{result.stderr[-3000:]}")
    return binary, round(time.monotonic() - started, 1)


def jaeger_config(otlp_port: int, query_port: int, grpc_port: int) -> str:
    return f"""
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:{grpc_port}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for(url: str, timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while True:
        try:
            get_json(url)
            return
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


async def pull(base: str, bootstrap: str, otlp: str, prefix: str) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OCPI_"))}
    environment |= {
        "OCPI_PULLER_TOKEN": TOKEN,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "ocpi-puller-smoke",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "pull", "--url", f"{base}/ocpi/versions",
        "--module", "tokens", "--partner", "sbx", "--partner-country", "NL",
        "--partner-party", "SBX", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        "--pull-id", "trace-smoke", "--output", "json", "--no-progress-bar",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"trace-smoke: the pull failed ({process.returncode}): {err[-2000:]!r}")
    summary: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    return summary


async def smoke(tokens: int, limit: int, query: str, otlp: str, bootstrap: str) -> dict[str, Any]:
    """The pull, then its trace from Jaeger's query API, checked."""
    overrides = {"sizes": {"tokens": tokens}, "max_limit": limit}
    async with running_sandbox(sandbox_config(**overrides)) as (base, state):
        summary = await pull(base, bootstrap, otlp, "smoke")
        pages_served = state.stats.pages_served
    trace: dict[str, Any] = {}
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        found = get_json(f"{query}/api/traces?service=ocpi-puller-smoke&limit=20")["data"]
        pulls = [t for t in found if any(s["operationName"] == "ocpi.pull" for s in t["spans"])]
        if pulls:
            trace = pulls[0]
            pages = [s for s in trace["spans"] if s["operationName"] == "ocpi.page"]
            if len(pages) >= pages_served:
                break
        await asyncio.sleep(0.5)
    spans = trace.get("spans", [])
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["operationName"], []).append(span)
    pages = by_name.get("ocpi.page", [])
    produces = by_name.get("kafka.produce", [])
    pull_spans = by_name.get("ocpi.pull", [])
    missing = {
        "ocpi.page": sorted(
            {a for s in pages for a in PAGE_ATTRIBUTES if a not in tags(s)}
            | {a for a in SOME_PAGE_ATTRIBUTES if not any(a in tags(s) for s in pages)}
        ),
        "ocpi.pull": sorted({a for s in pull_spans for a in PULL_ATTRIBUTES if a not in tags(s)}),
        "kafka.produce": sorted(
            {a for s in produces for a in PRODUCE_ATTRIBUTES if a not in tags(s)}
        ),
    }
    return {
        "passed": bool(
            pull_spans
            and len(pages) == pages_served
            and produces
            and not any(missing.values())
            and summary["objects_emitted"] == tokens
        ),
        "jaeger": VERSION,
        "objects_emitted": summary["objects_emitted"],
        "pages_served": pages_served,
        "trace_id": trace.get("traceID"),
        "spans": {name: len(found) for name, found in sorted(by_name.items())},
        "missing_attributes": missing,
        "page_span_example": tags(pages[0]) if pages else {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.trace_smoke", description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    binary, build_s = build_jaeger()
    work = Path(tempfile.mkdtemp(prefix="ocpi-trace-smoke-"))
    otlp_port, query_port, grpc_port = free_port(), free_port(), free_port()
    config = work / "jaeger.yaml"
    config.write_text(jaeger_config(otlp_port, query_port, grpc_port))
    with open(work / "jaeger.log", "wb") as log:
        jaeger = subprocess.Popen([str(binary), "--config", str(config)], stdout=log, stderr=log)
    broker = start_broker(work / "noida")
    query = f"http://127.0.0.1:{query_port}"
    try:
        wait_for(f"{query}/api/services")
        say(f"Jaeger up: OTLP/HTTP on {otlp_port}, query on {query_port}")
        result = asyncio.run(
            smoke(args.tokens, args.limit, query, f"http://127.0.0.1:{otlp_port}", broker.bootstrap)
        )
    finally:
        broker.stop()
        jaeger.terminate()
        try:
            jaeger.wait(10)
        except subprocess.TimeoutExpired:
            jaeger.kill()
        shutil.rmtree(work, ignore_errors=True)
    result["jaeger_build_s"] = build_s  # None: built before, taken from the cache
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
