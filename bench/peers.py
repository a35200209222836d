"""Peers and references on the same sandbox: dlt's RESTClient, a plain sequential aiohttp loop,
and the naive pull (what the old PullClient did). Each returns a `rate` figure.

Sequential clients at a page latency are measured over their first `max_pages` pages: their
rate is set by the latency per page, so more pages only take longer.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

from bench.processes import AUTH, TOKENS_PATH, rate


def dlt_fetch_only(base_url: str, max_pages: int | None) -> dict[str, Any]:
    """dlt's RESTClient with HeaderLinkPaginator, counting objects (no destination)."""
    from dlt.sources.helpers.rest_client.client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator

    client = RESTClient(
        base_url=base_url, headers=AUTH, paginator=HeaderLinkPaginator(), data_selector="data"
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    objects = 0
    for pages, page in enumerate(client.paginate(TOKENS_PATH, params={"limit": 1000}), 1):
        objects += len(page)
        if max_pages is not None and pages >= max_pages:
            break
    # dlt runs here, synchronously, on this process's one busy thread: the process's CPU time
    # across the loop is dlt's own (user + system).
    cpu_s = time.process_time() - cpu_started
    return rate(
        objects,
        time.perf_counter() - started,
        cpu_us_per_object={"dlt": round(cpu_s * 1e6 / max(1, objects), 2)},
    )


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
