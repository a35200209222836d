"""Never a false "complete" (issue 22): partner behaviours that once ended in exit 0 with objects
missing, each reproduced by the sandbox over real sockets and read back from Kafka.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web

from producer.kafka.checkpoints import CheckpointStore
from producer.kafka.output import KafkaOutput
from tests.scripted_partner import relay
from tests.support import (
    expected_survivors,
    keys,
    pinned_ms,
    pull,
    records,
    sandbox,
    truth_keys,
)


async def pull_tokens(base: str, bootstrap: str, prefix: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"ocpi_version": "2.2.1"}
    values.update(overrides)
    return await asyncio.wait_for(pull(base, bootstrap, prefix, **values), 180)


def hiding_one(hiding: dict[str, bool], *, first_window_only: bool = False) -> Any:
    """A rewrite that leaves the first object out of every first page (of the first window
    only: the one without `date_from`) while `hiding["on"]`, the totals still counting it: the
    window ends short."""

    def hide_one(
        request: web.Request, status: int, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        envelope = orjson.loads(body)
        data = envelope.get("data")
        first = request.query.get("offset") == "0"
        if first_window_only and "date_from" in request.query:
            first = False
        if hiding["on"] and isinstance(data, list) and first:
            envelope["data"] = data[1:]
        return web.Response(
            status=status,
            body=orjson.dumps(envelope),
            headers=headers,
            content_type="application/json",
        )

    return hide_one


async def test_a_partner_without_any_paging_header_is_read_to_the_end(
    bootstrap: str, prefix: str
) -> None:
    """No X-Total-Count, no X-Limit, no Link (a server slicing a list by offset/limit): the
    first page of 1,000 is not the end; an empty page is."""
    async with sandbox(sizes={"tokens": 1_500}, no_paging_headers=True) as (base, state):
        result = await pull_tokens(base, bootstrap, prefix, limit=1000)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.complete
    assert summary.total_reported is None
    assert any(w.startswith("no_total_count") for w in summary.warnings), summary.warnings
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    assert summary.objects_emitted == len(expected) == 1_500


async def test_a_total_that_is_the_page_length_is_not_believed(bootstrap: str, prefix: str) -> None:
    """--broken-total with one-shot links: X-Total-Count is each page's own length and no Link
    is ever sent. A second full page ends beyond its total: totals are ignored from then on,
    and the window is read to an empty page."""
    async with sandbox(sizes={"tokens": 3_000}, broken_total=True, link_style="one-shot") as (
        base,
        state,
    ):
        result = await pull_tokens(base, bootstrap, prefix, limit=1000)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.total_reported is None
    assert any(w.startswith("total_unreliable") for w in summary.warnings), summary.warnings
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    assert len(expected) == 3_000


async def test_a_shifted_date_filter_loses_nothing_at_window_boundaries(
    bootstrap: str, prefix: str
) -> None:
    """The partner lists [a + 100 s, b + 100 s) for date_from=a&date_to=b: each window's last
    100 objects come with the next window's request. They are produced there, counted as
    out_of_window and warned about, never dropped."""
    async with sandbox(sizes={"tokens": 2_000}, date_filter_shift_s=100) as (base, state):
        result = await pull_tokens(base, bootstrap, prefix, limit=200, window_size=500)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.windows > 2
    assert summary.out_of_window >= 100 * (summary.windows - 1), summary
    assert any(w.startswith("out_of_window") for w in summary.warnings), summary.warnings
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


async def test_a_date_filter_that_runs_early_is_told_with_what_it_may_cost(
    bootstrap: str, prefix: str
) -> None:
    """The partner lists [a - 100 s, b - 100 s): every window but the first lists objects from
    before its start, and no window lists those of the last 100 s before date_to. The warning
    says so; no tombstone is ever taken from such a pull (test_partners)."""
    async with sandbox(sizes={"tokens": 2_000}, date_filter_shift_s=-100) as (base, _state):
        result = await pull_tokens(base, bootstrap, prefix, limit=200, window_size=500)
    summary = result.summaries[0]
    assert summary.windows > 2
    (warning,) = [w for w in summary.warnings if w.startswith("out_of_window")]
    assert "the partner's date filter runs early" in warning, warning
    assert "may be listed by no window" in warning


async def test_a_lagging_partner_clock_pins_date_to_by_its_clock(
    bootstrap: str, prefix: str
) -> None:
    """The partner's clock runs 120 s behind ours and it updates tokens while they are pulled,
    twice, with --emit-tombstones. Pinned by our clock, a change made after the pin would carry
    a last_updated before it and fall into a window already read (missed, then tombstoned).
    Read off the partner's clock (its answers' timestamps and Date), the pin is 120 s earlier:
    every change after it is after it, each key's version in Kafka is the snapshot's, and no
    live key is tombstoned."""
    async with sandbox(
        sizes={"tokens": 3_000},
        clock_skew_s=-120,
        mutations_per_s=200.0,
        mutation_kinds=("update",),
    ) as (base, state):
        first = await pull_tokens(base, bootstrap, prefix, limit=200, emit_tombstones=True)
        second = await pull_tokens(base, bootstrap, prefix, limit=200, emit_tombstones=True)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(second))
        alive = truth_keys(state, "tokens", "2.2.1", state.now_ms())
    for result in (first, second):
        summary = result.summaries[0]
        assert result.exit_code == 0, summary
        assert any(w.startswith("partner_clock_skew") for w in summary.warnings), summary
        assert "pinned by its clock" in next(
            w for w in summary.warnings if w.startswith("partner_clock_skew")
        )
    pinned = datetime.fromisoformat(second.summaries[0].date_to or "")
    assert pinned < datetime.now(UTC) - timedelta(seconds=110)
    latest: dict[str, Any] = {}
    for record in await records(bootstrap, f"{prefix}.tokens"):
        latest[record.key.decode()] = record.value
    deleted = {key for key, value in latest.items() if value is None}
    assert not deleted & set(alive), "a live key was tombstoned"
    pinned_at = pinned_ms(second)
    for key, last_updated_ms in expected.items():
        if alive[key] >= pinned_at:
            # Changed after the pin, maybe before its window was read: it left this snapshot
            # (and belongs to the next pull), as the catch-up read saw.
            continue
        value = latest.get(key)
        assert value is not None, f"{key} missing"
        stamp = orjson.loads(value)["last_updated"]
        assert int(datetime.fromisoformat(stamp).timestamp() * 1000) >= last_updated_ms - 999, key


async def test_a_resume_pulls_again_the_window_that_ended_short(
    bootstrap: str, prefix: str
) -> None:
    """The partner leaves one object out of its pages while its totals count it: the window
    ends short (exit 5) and is saved so. The partner is then fixed; the same command resumes,
    reads that window again whole, and exits 0."""
    hiding = {"on": True}
    async with (
        sandbox(sizes={"tokens": 1_200}) as (base, state),
        relay(base, hiding_one(hiding)) as partner,
    ):
        url = f"{partner}/ocpi/emsp/2.2.1/tokens"
        first = await pull_tokens(partner, bootstrap, prefix, url=url, limit=200, pull_id="short-1")
        hiding["on"] = False
        resumed = await pull_tokens(
            partner, bootstrap, prefix, url=url, limit=200, pull_id="short-1"
        )
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(resumed))
    assert first.exit_code == 5, first.summaries[0]
    assert first.summaries[0].windows_incomplete == 1
    summary = resumed.summaries[0]
    assert resumed.exit_code == 0, summary
    assert summary.resumed
    assert summary.complete
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    assert summary.objects_emitted == len(expected) == 1_200


@pytest.mark.parametrize("shown_by", ["an end short of the offsets", "the run before"])
async def test_a_resume_reads_every_window_again_after_kafka_lost_acknowledged_writes(
    bootstrap: str, prefix: str, shown_by: str
) -> None:
    """A window's checkpoint says how far Kafka acknowledged its pages on each partition, and
    whether Kafka had shown the run a loss (offsets given again) it did not get to write again.
    A resume that finds a partition's end not past those offsets (Kafka lost writes while no
    puller ran), or such a checkpoint, reads every window again from its start, whatever the
    counts say, and exits 0 only with every object in Kafka. (Checkpoints written here as a
    broker that lost writes would leave them.)"""
    hiding = {"on": True}
    async with (
        sandbox(sizes={"tokens": 1_200}) as (base, state),
        relay(base, hiding_one(hiding, first_window_only=True)) as partner,
    ):
        url = f"{partner}/ocpi/emsp/2.2.1/tokens"
        run = {"url": url, "limit": 200, "pull_id": "short-2", "window_size": 300}
        first = await pull_tokens(partner, bootstrap, prefix, **run)
        kafka = KafkaOutput(bootstrap)
        await kafka.start()
        try:
            store = CheckpointStore(kafka, f"{prefix}.checkpoints", "sbx", "tokens")
            stored = await store.load("short-2")
            done = [c for c in stored.windows.values() if c.finished]
            assert done, stored.windows
            if shown_by == "the run before":
                lost: dict[str, Any] = {"kafka_lost_writes": True}
            else:
                lost = {"written_through": {f"{prefix}.tokens:0": 10**9}}
            await store.save_window(done[0].model_copy(update=lost))
            await store.flush()
        finally:
            await kafka.stop()
        hiding["on"] = False
        resumed = await pull_tokens(partner, bootstrap, prefix, **run)
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(resumed))
    assert first.exit_code == 5, first.summaries[0]
    summary = resumed.summaries[0]
    assert resumed.exit_code == 0, summary
    assert summary.resumed
    assert summary.complete
    shown = "before this run" if shown_by.startswith("an end") else "the run before this one"
    assert any(w.startswith("kafka_lost_writes") and shown in w for w in summary.warnings), (
        summary.warnings
    )
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


async def test_a_dialect_never_changes_a_key_nor_tombstones_a_live_one(
    bootstrap: str, prefix: str
) -> None:
    """A partner writing closed enums in lower case (`"type": "rfid"`), which lenient reading
    accepts, updates tokens while they are pulled a second time with --emit-tombstones. Every
    reader keys the canonical reading (`…/RFID`), the window pull and the tombstone catch-up
    alike: no live key is tombstoned, and no key is written in lower case."""
    async with sandbox(
        sizes={"tokens": 3_000},
        dialects=("lowercase",),
        mutations_per_s=150.0,
        mutation_kinds=("update",),
    ) as (base, state):
        first = await pull_tokens(base, bootstrap, prefix, limit=200, emit_tombstones=True)
        second = await pull_tokens(base, bootstrap, prefix, limit=200, emit_tombstones=True)
        alive = truth_keys(state, "tokens", "2.2.1", state.now_ms())
        # Updated during the second pull (after its pinned date_to): not of its snapshot, and
        # if also updated during the first, in neither (the next pull brings it).
        unchanged = expected_survivors(state, "tokens", "2.2.1", pinned_ms(second))
    assert first.exit_code == 0, first.summaries[0]
    assert second.exit_code == 0, second.summaries[0]
    latest: dict[str, Any] = {}
    for record in await records(bootstrap, f"{prefix}.tokens"):
        latest[record.key.decode()] = record.value
    assert all(key.rsplit("/", 1)[1].isupper() for key in latest), "a key in lower case"
    deleted = {key for key, value in latest.items() if value is None}
    assert not deleted & set(alive), f"{len(deleted & set(alive))} live keys tombstoned"
    missing = unchanged - set(latest)
    assert not missing, f"{len(missing)} unchanged tokens missing, e.g. {sorted(missing)[:3]}"
