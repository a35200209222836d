"""The sandbox partner over real HTTP: pagination per spec, faults, one-shot links, mutation,
ground truth, flat memory at 5M objects, and the `ocpi-puller sandbox` command."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import aiohttp
import psutil
import pytest

from producer.ocpi.protocol.links import find_next_target
from sandbox.dataset import Dataset, DatasetSpec
from sandbox.faults import FaultRates
from tests.sandbox.paging import walk_chain
from tests.support import auth_header, get, sandbox

TOKENS = "/ocpi/emsp/2.2.1/tokens"


async def test_link_chain_across_a_capped_limit() -> None:
    async with sandbox(sizes={"tokens": 2500}, max_limit=1000) as (base, _):
        objects, pages = await walk_chain(base, f"{TOKENS}?limit=5000")
    assert len(objects) == 2500
    assert len({o["uid"] for o in objects}) == 2500
    assert [p["X-Limit"] for p in pages] == ["1000", "1000", "1000"]
    assert [p["X-Total-Count"] for p in pages] == ["2500", "2500", "2500"]
    assert "offset=1000&limit=1000" in pages[0]["Link"]
    assert "offset=2000&limit=1000" in pages[1]["Link"]
    assert "Link" not in pages[2]
    # Stable order: oldest first, last_updated non-decreasing.
    stamps = [o["last_updated"] for o in objects]
    assert stamps == sorted(stamps)


async def test_next_link_keeps_the_original_filters() -> None:
    query = "date_from=2020-01-01T00:00:10Z&date_to=2020-01-01T00:01:00Z&limit=7"
    async with sandbox(sizes={"tokens": 500}) as (base, _):
        objects, pages = await walk_chain(base, f"{TOKENS}?{query}")
    assert len(objects) == 50
    assert all("2020-01-01T00:00:10" <= o["last_updated"] < "2020-01-01T00:01:00" for o in objects)
    assert all("date_from=2020-01-01T00%3A00%3A10Z" in p["Link"] for p in pages[:-1])
    assert all("date_to=2020-01-01T00%3A01%3A00Z" in p["Link"] for p in pages[:-1])


async def test_date_from_is_inclusive_and_date_to_exclusive() -> None:
    async with sandbox(sizes={"tokens": 100}) as (base, _):
        _, body, headers = await get(
            f"{base}{TOKENS}?date_from=2020-01-01T00:00:05Z&date_to=2020-01-01T00:00:08Z",
            auth_header(),
        )
    assert [o["last_updated"][-3:] for o in body["data"]] == ["05Z", "06Z", "07Z"]
    assert headers["X-Total-Count"] == "3"


async def test_relative_links() -> None:
    async with sandbox(sizes={"tokens": 30}, link_style="relative") as (base, _):
        _, _, headers = await get(f"{base}{TOKENS}?limit=10", auth_header())
        assert headers["Link"].startswith(f"<{TOKENS}?")
        objects, _ = await walk_chain(base, f"{TOKENS}?limit=10")
    assert len(objects) == 30


async def test_one_shot_links_work_once() -> None:
    async with sandbox(sizes={"tokens": 30}, link_style="one-shot") as (base, _):
        _, _, headers = await get(f"{base}{TOKENS}?limit=10", auth_header())
        target = find_next_target([headers["Link"]])
        assert target is not None
        assert "/ocpi/hub/page/" in target
        assert "offset" not in target  # opaque: no offsets to compute
        first, body, _ = await get(target, auth_header())
        again, error, _ = await get(target, auth_header())
        objects, _ = await walk_chain(base, f"{TOKENS}?limit=10")
    assert first == 200
    assert len(body["data"]) == 10
    assert again == 404
    assert error["status_code"] == 2003
    assert len(objects) == 30


async def test_authorization_per_version() -> None:
    async with sandbox(sizes={"tokens": 5}) as (base, _):
        missing, body, _ = await get(f"{base}{TOKENS}")
        plain_on_221, _, _ = await get(f"{base}{TOKENS}", auth_header("2.1.1"))
        plain_on_211, _, _ = await get(f"{base}/ocpi/emsp/2.1.1/tokens", auth_header("2.1.1"))
        base64_on_221, _, _ = await get(f"{base}{TOKENS}", auth_header("2.2.1"))
    assert missing == 401
    assert body["status_code"] == 2000
    assert body["data"] is None
    assert plain_on_221 == 401
    assert plain_on_211 == 200
    assert base64_on_221 == 200


async def test_versions_and_details_per_version() -> None:
    async with sandbox(sizes={"tokens": 5}) as (base, _):
        _, versions, _ = await get(f"{base}/ocpi/versions", auth_header())
        _, details_221, _ = await get(f"{base}/ocpi/versions/2.2.1", auth_header())
        _, details_211, _ = await get(f"{base}/ocpi/versions/2.1.1", auth_header("2.1.1"))
    assert {v["version"] for v in versions["data"]} == {"2.1.1", "2.2.1", "2.3.0"}
    tokens_221 = next(e for e in details_221["data"]["endpoints"] if e["identifier"] == "tokens")
    assert tokens_221["role"] == "SENDER"
    assert tokens_221["url"].endswith("/emsp/2.2.1/tokens")
    assert all("role" not in e for e in details_211["data"]["endpoints"])


async def test_sessions_require_date_from() -> None:
    async with sandbox(sizes={"sessions": 5}) as (base, _):
        status, body, _ = await get(f"{base}/ocpi/cpo/2.2.1/sessions", auth_header())
        ok, _, _ = await get(
            f"{base}/ocpi/cpo/2.2.1/sessions?date_from=2019-01-01T00:00:00Z", auth_header()
        )
    assert status == 400
    assert body["status_code"] == 2001
    assert ok == 200


async def test_error_fault() -> None:
    async with sandbox(sizes={"tokens": 5}, faults=FaultRates(error=1.0)) as (base, state):
        statuses = {(await get(f"{base}{TOKENS}", auth_header()))[0] for _ in range(30)}
    assert statuses <= {500, 502, 503}
    assert len(statuses) >= 2
    assert state.stats.faults["error"] == 30


async def test_throttle_fault_sends_both_retry_after_forms() -> None:
    async with sandbox(sizes={"tokens": 5}, faults=FaultRates(throttle=1.0)) as (base, _):
        answers = [await get(f"{base}{TOKENS}", auth_header()) for _ in range(2)]
    assert [a[0] for a in answers] == [429, 429]
    forms = {a[2]["Retry-After"] for a in answers}
    assert "1" in forms
    dated = next(f for f in forms if f != "1")
    assert parsedate_to_datetime(dated).timestamp() > time.time()


async def test_throttle_without_retry_after() -> None:
    async with sandbox(
        sizes={"tokens": 5}, faults=FaultRates(throttle=1.0), throttle_sends_retry_after=False
    ) as (base, _):
        status, _, headers = await get(f"{base}{TOKENS}", auth_header())
    assert status == 429
    assert "Retry-After" not in headers


async def read_body(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url, headers=auth_header()) as response:
        assert response.status == 200
        return await response.read()


async def test_reset_fault_drops_the_connection_mid_body() -> None:
    async with (
        sandbox(sizes={"tokens": 50}, faults=FaultRates(reset=1.0)) as (base, _),
        aiohttp.ClientSession() as session,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_body(session, f"{base}{TOKENS}")


async def test_stall_fault_outlasts_a_client_timeout() -> None:
    async with sandbox(sizes={"tokens": 5}, faults=FaultRates(stall=1.0), stall_seconds=3.0) as (
        base,
        _,
    ):
        timeout = aiohttp.ClientTimeout(total=0.5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            with pytest.raises(asyncio.TimeoutError):
                async with session.get(f"{base}{TOKENS}", headers=auth_header()) as response:
                    await response.read()


async def test_envelope_error_fault() -> None:
    async with sandbox(sizes={"tokens": 5}, faults=FaultRates(envelope_error=1.0)) as (base, _):
        status, body, _ = await get(f"{base}{TOKENS}", auth_header())
    assert status == 200
    assert body["status_code"] == 3000
    assert body["data"] == []


async def test_latency_is_applied_per_page() -> None:
    async with sandbox(sizes={"tokens": 5}, latency_ms=200) as (base, _):
        started = time.monotonic()
        await get(f"{base}{TOKENS}", auth_header())
        assert time.monotonic() - started >= 0.09  # jitter: 0.5x to 1.5x the mean


async def test_invalid_objects_are_fixed_per_object() -> None:
    async with sandbox(sizes={"tokens": 400}, invalid_rate=0.2) as (base, state):
        first, _ = await walk_chain(base, f"{TOKENS}?limit=100")
        second, _ = await walk_chain(base, f"{TOKENS}?limit=100")
    assert first == second  # retries see the same broken objects
    broken = [
        o
        for o in first
        if "uid" not in o or o["whitelist"] == "SOMETIMES" or "-30T25" in o["last_updated"]
    ]
    dataset = state.datasets["tokens"]
    assert len(broken) == sum(1 for i in range(400) if dataset.invalid_kind(i) is not None)
    assert 40 < len(broken) < 120


async def test_update_moves_an_object_to_the_end_and_shifts_later_pages() -> None:
    async with sandbox(sizes={"tokens": 10}) as (base, state):
        _, before, _ = await get(f"{base}{TOKENS}?limit=3", auth_header())
        dataset = state.datasets["tokens"]
        dataset.update(0, int(time.time() * 1000))
        _, after, headers = await get(f"{base}{TOKENS}?limit=3", auth_header())
        _, tail, _ = await get(f"{base}{TOKENS}?offset=9", auth_header())
    uids = [o["uid"] for o in before["data"]]
    assert [o["uid"] for o in after["data"]] == [*uids[1:], after["data"][2]["uid"]]
    assert tail["data"][0]["uid"] == uids[0]  # object 0 is now last
    assert tail["data"][0]["last_updated"] > "2025"
    assert headers["X-Total-Count"] == "10"


async def test_mutation_rate_updates_deletes_and_inserts_while_serving() -> None:
    async with sandbox(sizes={"tokens": 2000}, mutation_rate=0.05) as (base, state):
        await walk_chain(base, f"{TOKENS}?limit=100")
        kinds = {m.kind for m in state.datasets["tokens"].mutations}
        total = sum(len(d.mutations) for d in state.datasets.values())
    assert total >= 90  # 5% of 2000 objects served
    assert kinds == {"update", "delete", "insert"}


async def test_ground_truth_equals_what_a_perfect_client_sees() -> None:
    async with sandbox(sizes={"tokens": 3000}, max_limit=250) as (base, state):
        objects, _ = await walk_chain(base, f"{TOKENS}?limit=1000")
        dataset = state.datasets["tokens"]
        truth = list(dataset.state_at(int(time.time() * 1000) + 1000))
    assert [dataset.factory.token_uid(e.index) for e in truth] == [o["uid"] for o in objects]


def test_ground_truth_replays_mutations_at_any_instant() -> None:
    dataset = Dataset(DatasetSpec(module="tokens", size=100))
    base = 1_800_000_000_000
    dataset.update(5, base)
    dataset.delete(7, base + 2000)
    dataset.insert(base + 4000)
    before = {e.index: e.last_updated_ms for e in dataset.state_at(base)}
    middle = {e.index: e.last_updated_ms for e in dataset.state_at(base + 3000)}
    after = {e.index: e.last_updated_ms for e in dataset.state_at(base + 5000)}
    assert len(before) == 100
    assert before[5] == dataset.base_last_updated(5)
    assert middle[5] == base
    assert 7 not in middle
    assert 100 not in middle
    assert after[100] == base + 4000
    assert len(after) == 100
    assert dataset.changed_since(base + 1000) == {7, 100}


def test_random_mutations_keep_count_and_page_consistent() -> None:
    dataset = Dataset(DatasetSpec(module="tokens", size=500))
    rng = random.Random(7)
    now = 1_800_000_000_000
    for step in range(300):
        dataset.mutate_randomly(rng, now + step * 10)
        listed = dataset.page(0, 10_000)
        assert len(listed) == dataset.count()
        assert len({e.index for e in listed}) == len(listed)
        stamps = [(e.last_updated_ms, e.index) for e in listed]
        assert stamps == sorted(stamps)
        assert dataset.page(37, 13) == listed[37:50]


async def test_five_million_objects_are_served_with_flat_memory() -> None:
    process = psutil.Process()
    async with sandbox(sizes={"tokens": 5_000_000}, max_limit=1000) as (base, _):
        _, body, headers = await get(f"{base}{TOKENS}?offset=4999000", auth_header())
        assert headers["X-Total-Count"] == "5000000"
        assert len(body["data"]) == 1000
        assert "Link" not in headers
        for offset in range(0, 5_000_000, 250_000):  # warm up every code path
            await get(f"{base}{TOKENS}?offset={offset}&limit=1000", auth_header())
        baseline = process.memory_info().rss
        for offset in range(0, 5_000_000, 25_000):
            await get(f"{base}{TOKENS}?offset={offset}&limit=1000", auth_header())
        grown = process.memory_info().rss - baseline
    assert grown < 30 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB over 200 pages"


def test_sandbox_command_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "sandbox", "--tokens", "5000000", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert "sandbox OCPI partner at http://127.0.0.1:" in line
        assert "tokens=5000000" in line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
