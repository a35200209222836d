"""`make bench`: every performance figure in one run, printed as one JSON document.

All on one machine, against the same sandbox partner (a separate process, as a partner is) and
a fresh embedded broker for every variant that writes to Kafka (the broker's cost grows with what
it stores). The figures:

* end-to-end objects/s of `ocpi-puller pull` for the tokens at 0 ms and at 50 ms page latency
  (server cap 1000), at least once and exactly once (`--delivery exactly-once`, default units);
* the same pull done the naive way (sequential Link following, one `await producer.send()` per
  object) for reference;
* peers on the same sandbox, fetch-only: dlt's RESTClient + HeaderLinkPaginator, and a plain
  sequential aiohttp loop;
* ceilings: our fetch path (windows, fan-out, parse, validate, key) with no Kafka, and aiokafka
  producing pre-built messages with no HTTP, per message and through our batching outbox;
* peak and median RSS of the pull at 100k and 1M objects (and 10M with --with-10m: minutes);
* page validation objects/s (bench/bench_validation.py).

Sequential clients at 50 ms are measured over their first 200 pages: their rate is set by the
latency per page, so more pages only take longer. Ratios compare figures of this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_validation
from producer.kafka.output import KafkaOutput
from producer.kafka.records import OutMessage, TopicSpec
from producer.ocpi.client import OcpiHttp
from producer.ocpi.pages import ListQuery, PageDriver
from producer.ocpi.pagination import WindowWalk
from producer.ocpi.planning import plan_windows
from producer.ocpi.query import pin_now
from producer.ocpi.responses import PageContext
from producer.ocpi.versions import ModuleEndpoint
from producer.pull.records import MessageBuilder
from sandbox.broker import BrokerProcess, start_broker
from sandbox.generator import ObjectFactory, Party

TOKEN = "bench-token"
AUTH = {"Authorization": "Token " + base64.b64encode(TOKEN.encode()).decode()}
TOKENS_PATH = "/ocpi/emsp/2.2.1/tokens"
SEQUENTIAL_PAGES_AT_LATENCY = 200


# -- processes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    """The sandbox process: its base URL and pid (to account its CPU)."""

    url: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU a running process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@contextlib.contextmanager
def sandbox_process(tokens: int, latency_ms: float) -> Iterator[Partner]:
    """The sandbox as a separate process."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "producer.cli", "sandbox", "--port", "0",
            "--tokens", str(tokens), "--max-limit", "1000", "--latency-ms", str(latency_ms),
            "--token-value", TOKEN, "--locations", "0", "--tariffs", "0",
            "--sessions", "0", "--cdrs", "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        yield Partner(line.split(" at ", 1)[1].split("/ocpi/versions", 1)[0], process.pid)
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def fresh_broker() -> Iterator[BrokerProcess]:
    """A new embedded broker on an empty data directory."""
    with tempfile.TemporaryDirectory(prefix="ocpi-bench-kafka-") as data:
        broker = start_broker(Path(data))
        try:
            yield broker
        finally:
            broker.stop()


def run_pull(partner: Partner, broker: BrokerProcess, *extra: str) -> dict[str, Any]:
    """`ocpi-puller pull` as a process: wall time, peak RSS, its JSON summary, and the CPU time
    (µs per object) the puller, the sandbox and the broker each spent on it."""
    command = [
        sys.executable, "-m", "producer.cli", "pull",
        "--url", f"{partner.url}/ocpi/versions", "--module", "tokens",
        "--bootstrap-servers", broker.bootstrap, "--output", "json", "--log-level", "ERROR",
        "--concurrency", "8", *extra,
    ]  # fmt: skip
    sandbox_cpu = cpu_seconds(partner.pid)
    broker_cpu = cpu_seconds(broker.process.pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = psutil.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OCPI_PULLER_TOKEN": TOKEN},
    )
    samples: list[int] = []
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            samples.append(process.memory_info().rss)
        time.sleep(0.05)
    peak = max(samples, default=0)
    elapsed = time.perf_counter() - started
    out, err = process.communicate()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    puller_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    sandbox_cpu = cpu_seconds(partner.pid) - sandbox_cpu
    broker_cpu = cpu_seconds(broker.process.pid) - broker_cpu
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"pull failed ({process.returncode}): {err.decode()[-800:]}")
    summary = json.loads(lines[-1])
    return {
        "objects": summary["objects_emitted"],
        "seconds": round(elapsed, 2),
        "objects_per_s": round(summary["objects_emitted"] / elapsed),
        "peak_rss_mb": round(peak / 2**20, 1),
        # The peak is one 50 ms sample (a burst of unacknowledged pages); the median is the
        # steady state over the whole pull.
        "median_rss_mb": round(statistics.median(samples or [0]) / 2**20, 1),
        "complete": summary["complete"],
        "windows": summary["windows"],
        "pages": summary["pages"],
        "cpu_us_per_object": {
            name: round(cpu * 1e6 / summary["objects_emitted"], 1)
            for name, cpu in (
                ("puller", puller_cpu),
                ("sandbox", sandbox_cpu),
                ("broker", broker_cpu),
            )
        },
    }


def rate(objects: int, seconds: float, **more: Any) -> dict[str, Any]:
    """A figure: objects, seconds and objects/s."""
    return {
        "objects": objects,
        "seconds": round(seconds, 2),
        "objects_per_s": round(objects / seconds),
        **more,
    }


# -- peers and references ------------------------------------------------------------------------


def dlt_fetch_only(base_url: str, max_pages: int | None) -> dict[str, Any]:
    """dlt's RESTClient with HeaderLinkPaginator, counting objects (no destination)."""
    from dlt.sources.helpers.rest_client.client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator

    client = RESTClient(
        base_url=base_url, headers=AUTH, paginator=HeaderLinkPaginator(), data_selector="data"
    )
    started = time.perf_counter()
    objects = 0
    for pages, page in enumerate(client.paginate(TOKENS_PATH, params={"limit": 1000}), 1):
        objects += len(page)
        if max_pages is not None and pages >= max_pages:
            break
    return rate(objects, time.perf_counter() - started)


async def aiohttp_sequential(base_url: str, max_pages: int | None) -> dict[str, Any]:
    """A plain sequential aiohttp loop following Link, parsing every page."""
    started = time.perf_counter()
    objects = pages = 0
    url: str | None = f"{base_url}{TOKENS_PATH}?offset=0&limit=1000"
    async with aiohttp.ClientSession(headers=AUTH) as session:
        while url is not None:
            async with session.get(url) as response:
                response.raise_for_status()
                body = orjson.loads(await response.read())
                following = response.links.get("next")
            objects += len(body["data"])
            pages += 1
            url = None if following is None else str(following["url"])
            if max_pages is not None and pages >= max_pages:
                break
    return rate(objects, time.perf_counter() - started)


async def naive_pull(base_url: str, bootstrap: str, max_pages: int | None) -> dict[str, Any]:
    """What the old PullClient did, done right: Link by Link, one `await send()` per object."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, compression_type="lz4"
    )
    await producer.start()
    started = time.perf_counter()
    objects = pages = 0
    url: str | None = f"{base_url}{TOKENS_PATH}?offset=0&limit=1000"
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            while url is not None:
                async with session.get(url) as response:
                    body = orjson.loads(await response.read())
                    following = response.links.get("next")
                for obj in body["data"]:
                    key = f"{obj['country_code']}/{obj['party_id']}/{obj['uid']}/{obj['type']}"
                    await producer.send("naive.tokens", orjson.dumps(obj), key=key.encode())
                objects += len(body["data"])
                pages += 1
                url = None if following is None else str(following["url"])
                if max_pages is not None and pages >= max_pages:
                    break
        await producer.flush()
    finally:
        await producer.stop()
    return rate(objects, time.perf_counter() - started)


async def our_fetch_only(base_url: str) -> dict[str, Any]:
    """Our fetch path without Kafka: planned windows pulled concurrently with fan-out, every
    page parsed, validated and keyed as the pull does; nothing produced."""
    endpoint = __import__("yarl").URL(f"{base_url}{TOKENS_PATH}")
    builder = MessageBuilder(
        partner="bench", module="tokens", ocpi_version="2.2.1", pull_id="b", partner_identity=None
    )
    from pydantic import SecretStr

    started = time.perf_counter()
    objects = 0
    async with OcpiHttp(
        token=SecretStr(TOKEN),
        ocpi_version="2.2.1",
        token_encoding="base64",
        correlation_id="bench",
        connections=40,
    ) as http:

        async def probe(url: Any) -> Any:
            return await http.fetch_page(
                url, endpoint=endpoint, context=PageContext(), follow=False
            )

        date_to = pin_now()
        planned = await plan_windows(
            probe, endpoint, module="tokens", ocpi_version="2.2.1", date_from=None,
            date_to=date_to, window_size=20_000, parallel=8,
        )  # fmt: skip
        windows = planned.windows
        slots = asyncio.Semaphore(8)
        module = ModuleEndpoint(endpoint, "tokens", "2.2.1")

        async def window(spec: Any) -> int:
            query = ListQuery(module, spec.date_from, spec.date_to, 1000)
            driver = PageDriver(http, query, WindowWalk(max_ahead=4), slots=slots)
            count = 0
            async for fetched in driver.pages():
                count += len(builder.build(fetched.items, fetched.offset, "u", None).objects)
                driver.walk.on_acked(fetched.request.request_id)
            return count

        objects = sum(await asyncio.gather(*(window(w) for w in windows)))
    return rate(objects, time.perf_counter() - started)


async def produce_ceilings(bootstrap: str, count: int) -> dict[str, Any]:
    """aiokafka producing pre-built token messages, no HTTP: per message, and via our outbox."""
    from aiokafka import AIOKafkaProducer

    factory = ObjectFactory("tokens", 1, Party())
    headers = [("ocpi-version", b"2.2.1"), ("ocpi-module", b"tokens"), ("partner", b"bench"),
               ("pull-id", b"20261124T000000Z-bench"), ("source-offset", b"123456")]  # fmt: skip
    messages = []
    for i in range(count):
        obj = factory.render(i, "2.2.1", 1_600_000_000_000 + i * 1000)
        key = f"NL/SBX/{obj['uid']}/{obj['type']}".encode()
        messages.append(OutMessage(key, orjson.dumps(obj), headers))
    result: dict[str, Any] = {"messages": count}

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        compression_type="lz4", linger_ms=5, max_batch_size=1 << 20,
    )  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    futures = [
        await producer.send("ceiling.single", m.value, key=m.key, headers=m.headers)
        for m in messages
    ]
    await asyncio.gather(*futures)
    result["per_message_send"] = rate(count, time.perf_counter() - started)
    await producer.stop()

    kafka = KafkaOutput(bootstrap, partitions=6)
    await kafka.start()
    await kafka.ensure_topics([TopicSpec("ceiling.batch", compacted=True)])
    started = time.perf_counter()
    acks = [
        await kafka.send("ceiling.batch", messages[i : i + 1000]) for i in range(0, count, 1000)
    ]
    await asyncio.gather(*acks)
    result["batch_api_outbox"] = rate(count, time.perf_counter() - started)
    await kafka.stop()
    return result


# -- the run -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "platform": platform.platform(),
        "note": "one machine: sandbox, broker and client share the CPUs",
    }


async def run(tokens: int, with_10m: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with sandbox_process(tokens, 0) as fast:
        with fresh_broker() as broker:
            figures["ours_end_to_end_0ms"] = run_pull(fast, broker)
        with fresh_broker() as broker:
            figures["ours_end_to_end_exactly_once_0ms"] = run_pull(
                fast, broker, "--delivery", "exactly-once"
            )
        with fresh_broker() as broker:
            figures["naive_pull_0ms"] = await naive_pull(fast.url, broker.bootstrap, None)
        figures["dlt_fetch_only_0ms"] = dlt_fetch_only(fast.url, None)
        figures["aiohttp_sequential_fetch_only_0ms"] = await aiohttp_sequential(fast.url, None)
        figures["ours_fetch_only_no_kafka_0ms"] = await our_fetch_only(fast.url)
    with sandbox_process(tokens, 50) as slow:
        with fresh_broker() as broker:
            figures["ours_end_to_end_50ms"] = run_pull(slow, broker)
        with fresh_broker() as broker:
            figures["ours_end_to_end_exactly_once_50ms"] = run_pull(
                slow, broker, "--delivery", "exactly-once"
            )
        pages = SEQUENTIAL_PAGES_AT_LATENCY
        with fresh_broker() as broker:
            figures["naive_pull_50ms"] = await naive_pull(slow.url, broker.bootstrap, pages)
        figures["dlt_fetch_only_50ms"] = dlt_fetch_only(slow.url, pages)
        figures["aiohttp_sequential_fetch_only_50ms"] = await aiohttp_sequential(slow.url, pages)
    with fresh_broker() as broker:
        figures["produce_ceiling"] = await produce_ceilings(broker.bootstrap, tokens)
    memory: dict[str, Any] = {}
    sizes = [100_000, tokens] + ([10_000_000] if with_10m else [])
    for size in sizes:
        with sandbox_process(size, 0) as partner, fresh_broker() as broker:
            memory[f"pull_{size}"] = run_pull(partner, broker)
    figures["memory"] = memory
    figures["validation"] = bench_validation.measure()["modules"]

    e2e_0 = figures["ours_end_to_end_0ms"]["objects_per_s"]
    e2e_50 = figures["ours_end_to_end_50ms"]["objects_per_s"]
    best_sequential_50 = max(
        figures[k]["objects_per_s"]
        for k in ("naive_pull_50ms", "dlt_fetch_only_50ms", "aiohttp_sequential_fetch_only_50ms")
    )
    ceiling = figures["produce_ceiling"]["batch_api_outbox"]["objects_per_s"]
    per_message_ceiling = figures["produce_ceiling"]["per_message_send"]["objects_per_s"]
    # Puller, sandbox and broker share this machine's CPUs: the rate at which all of them would
    # be busy bounds every end-to-end figure here, whatever the client does.
    cpu_us = sum(figures["ours_end_to_end_0ms"]["cpu_us_per_object"].values())
    figures["cpu_budget_0ms"] = {
        "cpu_us_per_object_all_processes": round(cpu_us, 1),
        "objects_per_s_with_every_cpu_busy": round((os.cpu_count() or 1) * 1e6 / cpu_us),
    }
    largest = memory[f"pull_{sizes[-1]}"]["peak_rss_mb"]
    eos_0 = figures["ours_end_to_end_exactly_once_0ms"]["objects_per_s"]
    eos_50 = figures["ours_end_to_end_exactly_once_50ms"]["objects_per_s"]
    ratios = {
        "exactly_once_vs_at_least_once_0ms": round(eos_0 / e2e_0, 2),
        "exactly_once_vs_at_least_once_50ms": round(eos_50 / e2e_50, 2),
        "end_to_end_0ms_vs_dlt_fetch_only": round(
            e2e_0 / figures["dlt_fetch_only_0ms"]["objects_per_s"], 2
        ),
        "end_to_end_50ms_vs_best_sequential": round(e2e_50 / best_sequential_50, 2),
        "end_to_end_0ms_vs_produce_ceiling": round(e2e_0 / ceiling, 2),
        "end_to_end_0ms_vs_per_message_produce_ceiling": round(e2e_0 / per_message_ceiling, 2),
        "end_to_end_0ms_vs_our_fetch_only": round(
            e2e_0 / figures["ours_fetch_only_no_kafka_0ms"]["objects_per_s"], 2
        ),
        "end_to_end_0ms_vs_naive_pull": round(
            e2e_0 / figures["naive_pull_0ms"]["objects_per_s"], 2
        ),
        f"peak_rss_{sizes[-1]}_vs_100000": round(largest / memory["pull_100000"]["peak_rss_mb"], 2),
    }
    if with_10m:
        # Medians of runs long enough to be mostly steady state (the 100k pull lasts ~2 s, half
        # of it start-up): memory must not follow the object count.
        ratios[f"median_rss_10000000_vs_{tokens}"] = round(
            memory["pull_10000000"]["median_rss_mb"] / memory[f"pull_{tokens}"]["median_rss_mb"], 2
        )
    targets = {
        "exactly_once_vs_at_least_once_0ms": ">= 0.8",
        "end_to_end_0ms_vs_dlt_fetch_only": ">= 1.5",
        "end_to_end_50ms_vs_best_sequential": ">= 5",
        "end_to_end_0ms_vs_produce_ceiling": ">= 0.8",
        "peak_rss_10000000_vs_100000": "<= 1.2",
    }
    return {
        "machine": machine(),
        "tokens": tokens,
        "figures": figures,
        "ratios": ratios,
        "targets": targets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="ocpi-puller benchmarks (one JSON document)")
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--with-10m", action="store_true", help="also the 10M-object RSS run")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.tokens, args.with_10m)), indent=2), flush=True)


if __name__ == "__main__":
    main()
