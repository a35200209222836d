"""Ceilings: our fetch path with no Kafka (and the CPU this process spends on it), and aiokafka
producing pre-built messages with no HTTP, per message and through our batching outbox."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from pydantic import SecretStr
from yarl import URL

from bench.processes import TOKEN, TOKENS_PATH, own_cpu_seconds, rate
from producer.kafka.output import KafkaOutput
from producer.kafka.records import OutMessage, TopicSpec
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.paging.pages import ListQuery, PageDriver
from producer.ocpi.paging.reader import PageReader
from producer.ocpi.paging.walk import WalkStart
from producer.ocpi.planning.planning import plan_windows
from producer.ocpi.protocol.query import pin_now
from producer.ocpi.protocol.responses import PageContext
from producer.ocpi.protocol.versions import ModuleEndpoint
from producer.pull.records import MessageBuilder
from sandbox.generator import ObjectFactory, Party


async def our_fetch_only(base_url: str) -> dict[str, Any]:
    """Our fetch path without Kafka: planned windows pulled concurrently with fan-out, every
    page read (validated, keyed) and its records built as the pull does; nothing produced."""
    endpoint = URL(f"{base_url}{TOKENS_PATH}")
    reader = PageReader("2.2.1", "tokens", None)
    builder = MessageBuilder(partner="bench", module="tokens", ocpi_version="2.2.1", pull_id="b")
    started = time.perf_counter()
    cpu_before = own_cpu_seconds()
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
            driver = PageDriver(http, query, WalkStart(max_ahead=4), slots=slots)
            count = 0
            async for fetched in driver.pages():
                read = reader.read(fetched.items, fetched.text)
                count += len(builder.build(read, fetched.offset, "u", None).objects)
                driver.walk.on_acked(fetched.request.request_id)
            return count

        objects = sum(await asyncio.gather(*(window(w) for w in windows)))
    cpu = own_cpu_seconds() - cpu_before
    return rate(
        objects,
        time.perf_counter() - started,
        cpu_us_per_object={"puller": round(cpu * 1e6 / max(1, objects), 1)},
    )


async def produce_ceilings(bootstrap: str, count: int, *, per_message: bool) -> dict[str, Any]:
    """aiokafka producing pre-built token messages, no HTTP: via our outbox, and (with
    `per_message`) one `send` per message."""
    factory = ObjectFactory("tokens", 1, Party())
    headers = [("ocpi-version", b"2.2.1"), ("ocpi-module", b"tokens"), ("partner", b"bench"),
               ("pull-id", b"20261124T000000Z-bench"), ("source-offset", b"123456")]  # fmt: skip
    messages = []
    for i in range(count):
        obj = factory.render(i, "2.2.1", 1_600_000_000_000 + i * 1000)
        key = f"NL/SBX/{obj['uid']}/{obj['type']}".encode()
        messages.append(OutMessage(key, orjson.dumps(obj), headers))
    result: dict[str, Any] = {"messages": count}
    if per_message:
        result["per_message_send"] = await _per_message_ceiling(bootstrap, messages)
    result["batch_api_outbox"] = await _outbox_ceiling(bootstrap, messages)
    return result


async def _per_message_ceiling(bootstrap: str, messages: list[OutMessage]) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        compression_type="lz4", linger_ms=5, max_batch_size=1 << 20,
    )  # fmt: skip
    await producer.start()
    started, cpu_before = time.perf_counter(), own_cpu_seconds()
    futures = [
        await producer.send("ceiling.single", m.value, key=m.key, headers=m.headers)
        for m in messages
    ]
    await asyncio.gather(*futures)
    figure = rate(len(messages), time.perf_counter() - started)
    figure["cpu_us_per_object"] = _cpu_us(own_cpu_seconds() - cpu_before, len(messages))
    await producer.stop()
    return figure


async def _outbox_ceiling(bootstrap: str, messages: list[OutMessage]) -> dict[str, Any]:
    count = len(messages)
    kafka = KafkaOutput(bootstrap, partitions=6)
    await kafka.start()
    await kafka.ensure_topics([TopicSpec("ceiling.batch", compacted=True)])
    started, cpu_before = time.perf_counter(), own_cpu_seconds()
    acks = [
        await kafka.send("ceiling.batch", messages[i : i + 1000]) for i in range(0, count, 1000)
    ]
    await asyncio.gather(*acks)
    figure = rate(count, time.perf_counter() - started)
    figure["cpu_us_per_object"] = _cpu_us(own_cpu_seconds() - cpu_before, count)
    await kafka.stop()
    return figure


def _cpu_us(cpu_s: float, count: int) -> dict[str, float]:
    """This process's CPU per message while producing: what aiokafka alone costs, for comparison
    with the puller's CPU per object end to end."""
    return {"producer": round(cpu_s * 1e6 / max(1, count), 2)}
