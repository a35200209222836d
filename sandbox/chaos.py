"""The chaos run: every partner fault at once, a SIGKILLed puller, a restarted broker.

`python -m sandbox.chaos` (`make chaos`) pulls 1,000,000 tokens at concurrency 8 from a sandbox
with 5% 5xx, 1% 429 (both Retry-After forms), dropped connections, stalls longer than the
client's timeout, OCPI 3000 envelopes, 1% invalid objects and data that changes during the
pull; once with plain links and once with one-shot hub links. During each pull the harness
SIGKILLs the puller and resumes it with the same pull id, stops and restarts the embedded
broker (same data directory), then stops the resumed puller with SIGTERM (it drains: what it
sent is acknowledged and checkpointed before it exits 130) and resumes it once more. Then it
checks Kafka against the sandbox's ground truth:

* every object that existed at the pinned instant and was not changed during the pull is in
  `<prefix>.tokens` (missing must be 0: the only pass);
* every invalid such object is in `<prefix>.deadletter`;
* duplicates stay within what the pages in flight at the kill, the broker outage and its replay
  can explain; with `--delivery exactly-once` a read_committed consumer sees none at all
  (`duplicates_read_committed`, must be 0);
* the run resumed after the SIGTERM writes nothing that was there before it
  (`duplicates_after_graceful_stop`, must be 0; with exactly-once, what read_committed
  consumers see).

Variants: both link styles, each at least once and exactly once (`--link-style`, `--delivery`).
`--broker apache` runs them on Apache Kafka 4.x, whose JVM is killed (-9) instead of stopped.

It prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from sandbox.apache_kafka.broker import ApacheKafka, start_apache_kafka
from sandbox.app import running_sandbox
from sandbox.broker import BrokerProcess, start_broker
from sandbox.config import SandboxConfig
from sandbox.faults import FaultRates
from sandbox.kafka_reader import Isolation, read_records_async
from sandbox.state import SandboxState
from schemas.keys import key_function

TOKEN = "chaos-token"
PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    """How big and how hostile a chaos run is."""

    tokens: int = 1_000_000
    concurrency: int = 8
    link_style: str = "absolute"
    error_rate: float = 0.05
    throttle_rate: float = 0.01
    reset_rate: float = 0.005
    stall_rate: float = 0.002
    envelope_error_rate: float = 0.005
    invalid_rate: float = 0.01
    mutation_rate: float = 0.0002
    kill_at: float = 0.30  # fraction of pages served when the puller is SIGKILLed
    broker_restart_at: float = 0.60  # ... when the broker is stopped (and restarted)
    broker_down_s: float = 3.0
    graceful_stop_at: float = 0.80  # ... when the resumed puller is stopped with SIGTERM
    seed: int = 7
    delivery: str = "at-least-once"
    broker: str = "noida"  # or "apache": Apache Kafka 4.x, whose JVM is killed (-9), not stopped


@dataclass(slots=True)
class ChaosReport:
    """The figures of one chaos run."""

    link_style: str
    tokens: int
    delivery: str = "at-least-once"
    broker: str = "noida"
    objects_expected: int = 0
    objects_found: int = 0
    objects_missing: int = 0
    duplicates_read_committed: int = 0
    messages: int = 0
    duplicates: int = 0
    duplicate_bound: int = 0
    replayed_objects: int = 0
    resent_objects: int = 0
    invalid_expected: int = 0
    dead_lettered: int = 0
    invalid_missing: int = 0
    changed_during_pull: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    killed: bool = False
    broker_restarted: bool = False
    gracefully_stopped: bool = False
    duplicates_after_graceful_stop: int = 0
    exit_codes: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the last run's summary warnings
    complete: bool = False
    duration_s: float = 0.0
    passed: bool = False


def sandbox_config(options: ChaosOptions) -> SandboxConfig:
    """The partner from hell (every fault at once)."""
    return SandboxConfig(
        port=0,
        seed=options.seed,
        sizes={"tokens": options.tokens, "locations": 0, "tariffs": 0, "sessions": 0, "cdrs": 0},
        token_value=TOKEN,
        max_limit=PAGE_SIZE,
        link_style=options.link_style,  # type: ignore[arg-type]
        faults=FaultRates(
            stall=options.stall_rate,
            reset=options.reset_rate,
            error=options.error_rate,
            throttle=options.throttle_rate,
            envelope_error=options.envelope_error_rate,
        ),
        stall_seconds=4.0,
        retry_after_seconds=1,
        invalid_rate=options.invalid_rate,
        mutation_rate=options.mutation_rate,
    )


async def run_puller(
    base_url: str, bootstrap: str, prefix: str, pull_id: str, options: ChaosOptions
) -> asyncio.subprocess.Process:
    """The puller as a real process (so it can be SIGKILLed)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "pull",
        "--url", f"{base_url}/ocpi/versions", "--module", "tokens",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--topic-partitions", "6",
        "--pull-id", pull_id, "--partner", "chaos",
        "--concurrency", str(options.concurrency), "--fanout", "4",
        "--limit", "1000", "--window-size", "50000",
        "--request-timeout-s", "2", "--max-attempts", "12",
        "--kafka-deadline-s", "120", "--kafka-request-timeout-s", "3",
        "--delivery", options.delivery, "--output", "json", "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OCPI_PULLER_TOKEN": TOKEN},
    )  # fmt: skip


async def wait_pages(state: SandboxState, pages: int, process: asyncio.subprocess.Process) -> bool:
    """Wait until the sandbox served `pages` list pages; False if the puller ended first."""
    while state.stats.pages_served < pages:
        if process.returncode is not None:
            return False
        await asyncio.sleep(0.05)
    return True


def _index_of_contract(contract_id: str) -> int | None:
    # The sandbox's token contract ids end in the object's index (C000001234).
    tail = contract_id.rsplit("C", 1)[-1]
    return int(tail) if tail.isdigit() else None


async def written(bootstrap: str, topic: str, delivery: str) -> Counter[tuple[bytes, bytes]]:
    """Every (key, value) on a topic, with how often (tombstones left out). Exactly-once: as a
    read_committed consumer sees it (a transaction the killed run left open is aborted, in
    Kafka for nobody; the resumed run rightly writes its records again)."""
    isolation: Isolation = "read_committed" if delivery == "exactly-once" else "read_uncommitted"
    found = Counter[tuple[bytes, bytes]]()
    for record in await read_records_async(bootstrap, topic, isolation=isolation):
        if record.value is not None and record.key is not None:
            found[(record.key, record.value)] += 1
    return found


async def verify(
    state: SandboxState, bootstrap: str, prefix: str, pinned_ms: int, report: ChaosReport
) -> None:
    """Compare Kafka with the sandbox's ground truth at the pinned instant."""
    dataset = state.datasets["tokens"]
    make_key = key_function("tokens", "2.2.1", None)
    changed = dataset.changed_since(pinned_ms)
    report.changed_during_pull = len(changed)
    expected: dict[str, int] = {}
    invalid: set[int] = set()
    for entry in dataset.state_at(pinned_ms):
        if entry.index in changed:
            continue
        if entry.invalid is not None:
            invalid.add(entry.index)
            continue
        ident = dataset.factory.identity(entry.index)
        key = make_key(
            {
                "country_code": ident.country_code,
                "party_id": ident.party_id,
                "uid": ident.object_id,
                "type": ident.token_type,
            }
        )
        expected[key] = entry.index
    # Read back by the second client (confluent-kafka), not the aiokafka that wrote it.
    produced = Counter[str]()
    for record in await read_records_async(
        bootstrap, f"{prefix}.tokens", isolation="read_uncommitted"
    ):
        if record.value is not None and record.key is not None:
            produced[record.key.decode()] += 1
    # What a consumer set to isolation.level=read_committed sees (the exactly-once promise).
    committed = Counter[str]()
    for record in await read_records_async(bootstrap, f"{prefix}.tokens"):
        if record.value is not None and record.key is not None:
            committed[record.key.decode()] += 1
    dead: set[int] = set()
    for record in await read_records_async(bootstrap, f"{prefix}.deadletter"):
        obj = orjson.loads(record.value or b"{}").get("object")
        if isinstance(obj, dict) and isinstance(obj.get("contract_id"), str):
            index = _index_of_contract(obj["contract_id"])
            if index is not None:
                dead.add(index)
    report.objects_expected = len(expected)
    report.objects_found = sum(1 for key in expected if key in committed)
    report.objects_missing = report.objects_expected - report.objects_found
    report.duplicates_read_committed = sum(committed.values()) - len(committed)
    report.messages = sum(produced.values())
    report.duplicates = report.messages - len(produced)
    report.invalid_expected = len(invalid)
    report.dead_lettered = len(dead)
    report.invalid_missing = len(invalid - dead)


async def run_chaos(options: ChaosOptions, work_dir: Path) -> ChaosReport:
    """One chaos run; the report says whether it passed."""
    report = ChaosReport(options.link_style, options.tokens, options.delivery, options.broker)
    started = time.monotonic()
    variant = f"{options.link_style}-{'eos' if options.delivery == 'exactly-once' else 'alo'}"
    broker: BrokerProcess | ApacheKafka
    if options.broker == "apache":
        broker = start_apache_kafka(work_dir / f"kafka-{variant}")
    else:
        broker = start_broker(work_dir / f"kafka-{variant}")
    prefix, pull_id = f"chaos-{variant}", f"chaos-{variant}-1"
    pages_total = max(1, options.tokens // PAGE_SIZE)
    summaries: list[dict[str, Any]] = []
    try:
        async with running_sandbox(sandbox_config(options)) as (base_url, state):
            first = await run_puller(base_url, broker.bootstrap, prefix, pull_id, options)
            if await wait_pages(state, int(pages_total * options.kill_at), first):
                with contextlib.suppress(ProcessLookupError):
                    first.send_signal(signal.SIGKILL)
                    report.killed = True
            await first.communicate()
            report.exit_codes.append(first.returncode or 0)
            second = await run_puller(base_url, broker.bootstrap, prefix, pull_id, options)
            if await wait_pages(state, int(pages_total * options.broker_restart_at), second):
                # noida-db is stopped (a kill loses its snapshot); Apache Kafka's JVM is killed.
                apache = options.broker == "apache"
                await asyncio.to_thread(broker.kill if apache else broker.stop)
                await asyncio.sleep(options.broker_down_s)
                await asyncio.to_thread(broker.restart)
                report.broker_restarted = True
            if await wait_pages(state, int(pages_total * options.graceful_stop_at), second):
                with contextlib.suppress(ProcessLookupError):  # it may have just finished
                    second.send_signal(signal.SIGTERM)
                    report.gracefully_stopped = True
            await second.communicate()
            report.exit_codes.append(second.returncode or 0)
            before = await written(broker.bootstrap, f"{prefix}.tokens", options.delivery)
            third = await run_puller(base_url, broker.bootstrap, prefix, pull_id, options)
            out, err = await third.communicate()
            report.exit_codes.append(third.returncode or 0)
            after = await written(broker.bootstrap, f"{prefix}.tokens", options.delivery)
            # What the resumed run wrote that was in Kafka before it: what the stop made it
            # repeat (its own step-backs over pages in flight are churn's, not the stop's).
            added = after - before
            report.duplicates_after_graceful_stop = sum(
                count for pair, count in added.items() if pair in before
            )
            lines = [line for line in out.decode().splitlines() if line.startswith("{")]
            if not lines:
                raise RuntimeError(f"the puller printed no summary: {err.decode()[-500:]}")
            summaries.append(json.loads(lines[-1]))
            summary = summaries[-1]
            report.complete = bool(summary.get("complete"))
            report.warnings = list(summary.get("warnings", []))
            report.retries = int(summary.get("retries", 0))
            report.replayed_objects = int(summary.get("replayed_objects", 0))
            report.resent_objects = int(summary.get("resent_objects", 0))
            pinned_ms = int(datetime.fromisoformat(summary["date_to"]).timestamp() * 1000)
            report.faults = dict(state.stats.faults)
            report.requests = sum(state.stats.requests.values())
            await verify(state, broker.bootstrap, prefix, pinned_ms, report)
    finally:
        broker.stop()
    # Duplicates are explained by: pages in flight when the puller was killed (unacknowledged
    # pages, at most 2 x concurrency x fanout, and acknowledged ones whose checkpoint was not yet
    # written, at most as many again), and what the resumed puller reports it produced again:
    # pages whose acknowledgement failed during the broker outage, and the replayed stretch.
    in_flight_pages = 3 * options.concurrency * 4
    report.duplicate_bound = (
        in_flight_pages * PAGE_SIZE + report.replayed_objects + report.resent_objects
    )
    report.duration_s = round(time.monotonic() - started, 1)
    # Exactly-once: read_committed consumers see no duplicate at all (`duplicates` counts what
    # read_uncommitted ones see, aborted transactions included).
    no_excess = (
        report.duplicates_read_committed == 0
        if options.delivery == "exactly-once"
        else report.duplicates <= report.duplicate_bound
    )
    report.passed = (
        report.objects_missing == 0
        and report.invalid_missing == 0
        and report.complete
        and no_excess
        and report.duplicates_after_graceful_stop == 0
    )
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m sandbox.chaos`: both link styles; one JSON line; exit 0 only if both pass."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.chaos", description=__doc__)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--link-style", choices=("absolute", "one-shot", "both"), default="both")
    parser.add_argument(
        "--delivery", choices=("at-least-once", "exactly-once", "both"), default="both"
    )
    parser.add_argument(
        "--broker",
        choices=("noida", "apache"),
        default="noida",
        help="the embedded noida-db (stopped and restarted), or Apache Kafka 4.x (killed -9 "
        "and restarted on the same log directories)",
    )
    args = parser.parse_args(argv)
    styles = ["absolute", "one-shot"] if args.link_style == "both" else [args.link_style]
    deliveries = ["at-least-once", "exactly-once"] if args.delivery == "both" else [args.delivery]
    with tempfile.TemporaryDirectory(prefix="ocpi-chaos-") as work:
        reports = [
            asyncio.run(
                run_chaos(
                    ChaosOptions(
                        tokens=args.tokens,
                        concurrency=args.concurrency,
                        link_style=s,
                        delivery=d,
                        broker=args.broker,
                    ),
                    Path(work),
                )
            )
            for d in deliveries
            for s in styles
        ]
    exactly_once = [r for r in reports if r.delivery == "exactly-once"]
    result = {
        "passed": all(r.passed for r in reports),
        "objects_missing": sum(r.objects_missing for r in reports),
        "duplicates_read_committed": sum(r.duplicates_read_committed for r in exactly_once),
        "variants": [asdict(r) for r in reports],
    }
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
