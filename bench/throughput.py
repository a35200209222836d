"""Throughput and memory: our pull end to end next to its peers and ceilings, in one round.

A round measures, side by side on one machine:

* what a pull costs whatever it reads (`ours_pull_fixed_cost`: the pull of an empty module:
  interpreter start, imports, Kafka connect, discovery, planning, summary);
* `ocpi-puller pull` end to end at its default settings (`--concurrency auto`) at 0 ms and at
  50 ms page latency (server cap 1000), and pinned at `--concurrency` 4, 8 and 16 in every
  round (the `_concurrency_N` figures): the defaults against the best pinned number;
* the naive pull (sequential Link following, one `await producer.send()` per object), dlt's
  RESTClient and a plain sequential aiohttp loop, fetch-only;
* our fetch path with no Kafka (and this process's CPU across it), aiokafka producing
  pre-built messages through our outbox (and per message, first round only);
* peak and median RSS of the pull at default settings for 100k objects (the 1M figure is the
  0 ms end-to-end pull itself) and with `--with-10m` for 10M (minutes).

Sequential clients at 50 ms are measured over their first 200 pages: their rate is set by the
latency per page, so more pages only take longer. Rounds after the first measure only what a
target names (`REPEATED`); ratios are taken within a round.
"""

from __future__ import annotations

from typing import Any

from bench.ceilings import our_fetch_only, produce_ceilings
from bench.peers import aiohttp_sequential, dlt_fetch_only, naive_pull
from bench.processes import Partner, fresh_broker, run_pull, sandbox_process

SEQUENTIAL_PAGES_AT_LATENCY = 200
SEQUENTIAL_AT_50MS = (
    "naive_pull_50ms",
    "dlt_fetch_only_50ms",
    "aiohttp_sequential_fetch_only_50ms",
)
# Pinned concurrencies the defaults are measured against, in every round.
PINNED = (4, 8, 16)

# The figures measured in every round (a target names them), with the measures whose median,
# min and max are reported (`repeats.merge_figure`; the first picks the run that stands).
_RATE = ("objects_per_s",)
_CPU = ("objects_per_s", "cpu_us_per_object.puller")
_RSS = ("peak_rss_mb", "median_rss_mb")
REPEATED: dict[str, tuple[str, ...]] = {
    "ours_end_to_end_0ms": (*_CPU, "peak_rss_mb"),
    "ours_end_to_end_50ms": (*_CPU, "peak_rss_mb"),
    **{f"ours_end_to_end_{ms}ms_concurrency_{n}": _RATE for ms in (0, 50) for n in PINNED},
    "dlt_fetch_only_0ms": ("objects_per_s", "cpu_us_per_object.dlt"),
    "ours_fetch_only_no_kafka_0ms": _CPU,
    **dict.fromkeys(SEQUENTIAL_AT_50MS, _RATE),
    "produce_ceiling": ("batch_api_outbox.objects_per_s",),
    "ours_pull_fixed_cost": ("cpu_s.puller", "seconds"),
}
# Every memory figure is measured in every round (100k and 10M are named by a target).
MEMORY_MEASURES = _RSS


async def throughput_round(tokens: int, *, first: bool) -> dict[str, Any]:
    """One round of the throughput figures (`first`: also those no target names)."""
    figures: dict[str, Any] = {}
    with sandbox_process(0, 0) as empty, fresh_broker() as broker:
        figures["ours_pull_fixed_cost"] = run_pull(empty, broker)
    with sandbox_process(tokens, 0) as fast:
        with fresh_broker() as broker:
            figures["ours_end_to_end_0ms"] = run_pull(fast, broker)
        _pinned(figures, fast, 0)
        if first:
            with fresh_broker() as broker:
                figures["naive_pull_0ms"] = await naive_pull(fast.url, broker.bootstrap, None)
        figures["dlt_fetch_only_0ms"] = dlt_fetch_only(fast.url, None)
        if first:
            figures["aiohttp_sequential_fetch_only_0ms"] = await aiohttp_sequential(fast.url, None)
        figures["ours_fetch_only_no_kafka_0ms"] = await our_fetch_only(fast.url)
    with sandbox_process(tokens, 50) as slow:
        with fresh_broker() as broker:
            figures["ours_end_to_end_50ms"] = run_pull(slow, broker)
        _pinned(figures, slow, 50)
        pages = SEQUENTIAL_PAGES_AT_LATENCY
        with fresh_broker() as broker:
            figures["naive_pull_50ms"] = await naive_pull(slow.url, broker.bootstrap, pages)
        figures["dlt_fetch_only_50ms"] = dlt_fetch_only(slow.url, pages)
        figures["aiohttp_sequential_fetch_only_50ms"] = await aiohttp_sequential(slow.url, pages)
    with fresh_broker() as broker:
        figures["produce_ceiling"] = await produce_ceilings(
            broker.bootstrap, tokens, per_message=first
        )
    return figures


def memory_round(tokens: int, e2e_0ms: dict[str, Any], *, with_10m: bool) -> dict[str, Any]:
    """Peak and median RSS of the pull at default settings by object count.

    The `tokens` figure is `e2e_0ms` (the same pull: fresh sandbox, fresh broker, defaults).
    """
    memory: dict[str, Any] = {}
    for size in [100_000, tokens] + ([10_000_000] if with_10m else []):
        if f"pull_{size}" in memory:
            continue
        if size == tokens:
            memory[f"pull_{size}"] = e2e_0ms
            continue
        with sandbox_process(size, 0) as partner, fresh_broker() as broker:
            memory[f"pull_{size}"] = run_pull(partner, broker)
    return memory


def _pinned(figures: dict[str, Any], partner: Partner, latency_ms: int) -> None:
    """The pull pinned at each of `PINNED` concurrencies (a fresh broker each)."""
    for n in PINNED:
        with fresh_broker() as broker:
            figures[f"ours_end_to_end_{latency_ms}ms_concurrency_{n}"] = run_pull(
                partner, broker, "--concurrency", str(n)
            )


def ratios_of(figures: dict[str, Any], memory: dict[str, Any], tokens: int) -> dict[str, float]:
    """The ratios of one round's figures (those whose inputs the round measured)."""
    rate = {k: f["objects_per_s"] for k, f in figures.items() if "objects_per_s" in f}
    e2e_0, e2e_50 = rate["ours_end_to_end_0ms"], rate["ours_end_to_end_50ms"]
    ratios = {
        "end_to_end_0ms_vs_dlt_fetch_only": e2e_0 / rate["dlt_fetch_only_0ms"],
        "end_to_end_50ms_vs_best_sequential": e2e_50 / max(rate[k] for k in SEQUENTIAL_AT_50MS),
        "end_to_end_0ms_vs_produce_ceiling": (
            e2e_0 / figures["produce_ceiling"]["batch_api_outbox"]["objects_per_s"]
        ),
    }
    if "per_message_send" in figures["produce_ceiling"]:
        ratios["end_to_end_0ms_vs_per_message_produce_ceiling"] = (
            e2e_0 / figures["produce_ceiling"]["per_message_send"]["objects_per_s"]
        )
    ratios["end_to_end_0ms_vs_our_fetch_only"] = e2e_0 / rate["ours_fetch_only_no_kafka_0ms"]
    # Issue 26: our whole pull against dlt's fetch alone, CPU per object, the same round.
    ratios["puller_cpu_vs_dlt_cpu_per_object"] = (
        figures["ours_end_to_end_0ms"]["cpu_us_per_object"]["puller"]
        / figures["dlt_fetch_only_0ms"]["cpu_us_per_object"]["dlt"]
    )
    if "naive_pull_0ms" in rate:
        ratios["end_to_end_0ms_vs_naive_pull"] = e2e_0 / rate["naive_pull_0ms"]
    if "ours_end_to_end_0ms_concurrency_8" in rate:
        ratios["end_to_end_0ms_defaults_vs_concurrency_8"] = (
            e2e_0 / rate["ours_end_to_end_0ms_concurrency_8"]
        )
    for ms, defaults in ((0, e2e_0), (50, e2e_50)):
        pinned = [rate.get(f"ours_end_to_end_{ms}ms_concurrency_{n}") for n in PINNED]
        if all(pinned):
            ratios[f"defaults_vs_best_pinned_{ms}ms"] = defaults / max(filter(None, pinned))
    largest = 10_000_000 if "pull_10000000" in memory else tokens
    ratios[f"peak_rss_{largest}_vs_100000"] = (
        memory[f"pull_{largest}"]["peak_rss_mb"] / memory["pull_100000"]["peak_rss_mb"]
    )
    if "pull_10000000" in memory:
        # Medians of runs long enough to be mostly steady state (the 100k pull lasts ~2 s, half
        # of it start-up): memory must not follow the object count.
        ratios[f"median_rss_10000000_vs_{tokens}"] = (
            memory["pull_10000000"]["median_rss_mb"] / memory[f"pull_{tokens}"]["median_rss_mb"]
        )
    return {name: round(value, 2) for name, value in ratios.items()}
