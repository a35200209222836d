"""Partners whose lists have no stable order (issue 23): a hub listing a hash map answers every
request with its date window in another order, so offset paging skips some objects and repeats
others whatever the client does. The puller sees the order change (an object at another
position while the total stayed), reads the window in date pieces of one page each, and
completes; lists in a stable order of another kind page as before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producer.kafka.checkpoints import CheckpointStore
from producer.kafka.output import KafkaOutput
from producer.kafka.records import PullTopics
from schemas.records import PullPlan, WindowCheckpoint, WindowSpec
from tests.support import keys, pinned_ms, pull, sandbox, truth_keys

MODULE_VERSION = "2.2.1"


async def pull_module(base: str, bootstrap: str, prefix: str, module: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"module": module, "ocpi_version": MODULE_VERSION, "limit": 1000}
    values.update(overrides)
    return await asyncio.wait_for(pull(base, bootstrap, prefix, **values), 300)


@pytest.mark.parametrize("module", ["tokens", "sessions", "cdrs"])
@pytest.mark.parametrize("concurrency", ["auto", 4])
async def test_an_unstable_order_is_read_in_pieces_and_completes(
    bootstrap: str, prefix: str, module: str, concurrency: object
) -> None:
    size = 3_000
    async with sandbox(sizes={module: size}, max_limit=250, unordered=True) as (base, state):
        result = await pull_module(base, bootstrap, prefix, module, concurrency=concurrency)
        expected = truth_keys(state, module, MODULE_VERSION, pinned_ms(result))
        served = state.stats.objects_served
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.partner_order == "unstable"
    assert summary.narrowed_windows == summary.windows == 1
    assert set(await keys(bootstrap, f"{prefix}.{module}")) == set(expected)
    assert summary.objects_emitted == len(expected)
    assert served <= 2 * size, served


@pytest.mark.parametrize(("sort_by", "order"), [("id", "other"), ("none", "other")])
async def test_a_stable_order_of_another_kind_pages_as_before(
    bootstrap: str, prefix: str, sort_by: str, order: str
) -> None:
    async with sandbox(sizes={"tokens": 3_000}, max_limit=250, sort_by=sort_by) as (base, state):
        result = await pull_module(base, bootstrap, prefix, "tokens")
        expected = truth_keys(state, "tokens", MODULE_VERSION, pinned_ms(result))
        pages = state.stats.pages_served
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert (summary.partner_order, summary.narrowed_windows) == (order, 0)
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
    assert pages <= 3_000 // 250 + 2  # the pages and a probe or two: nothing read twice


async def test_a_list_by_last_updated_says_so(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 1_000}, max_limit=250) as (base, _):
        result = await pull_module(base, bootstrap, prefix, "tokens")
    assert result.summaries[0].partner_order == "last_updated"


async def test_planning_an_unstable_list_of_many_windows_stays_within_its_budget(
    bootstrap: str, prefix: str
) -> None:
    """Its two ends are any two objects: they place no cut; planning asks at most two counts
    per window and 16, and every window narrows."""
    async with sandbox(sizes={"tokens": 8_000}, max_limit=250, unordered=True) as (base, state):
        result = await pull_module(base, bootstrap, prefix, "tokens", window_size=2_000)
        expected = truth_keys(state, "tokens", MODULE_VERSION, pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.windows >= 4
    assert summary.planning_requests <= 2 * summary.windows + 16
    assert summary.narrowed_windows >= summary.windows - 1  # (one may hold nothing)
    assert summary.objects_emitted == len(expected)
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


async def test_a_second_held_by_more_than_a_page_is_read_until_its_keys_are_all_there(
    bootstrap: str, prefix: str
) -> None:
    """1,000 objects share each second (spacing 1 ms) and a page holds 250: such a piece
    cannot be split. It is read again, its keys unioned, up to --max-rereads times: once is
    not enough (exit 5, `unsplittable`); resumed with more, the pull completes."""
    async with sandbox(sizes={"tokens": 2_000}, max_limit=250, unordered=True, spacing_ms=1) as (
        base,
        state,
    ):
        short = await pull_module(
            base, bootstrap, prefix, "tokens", pull_id="ties-1", max_rereads=1
        )
        resumed = await pull_module(
            base, bootstrap, prefix, "tokens", pull_id="ties-1", max_rereads=30
        )
        expected = truth_keys(state, "tokens", MODULE_VERSION, pinned_ms(resumed))
    assert short.exit_code == 5, short.summaries[0]
    assert any("unsplittable" in w for w in short.summaries[0].warnings), short.summaries[0]
    summary = resumed.summaries[0]
    assert resumed.exit_code == 0, summary
    assert summary.resumed
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)


async def test_a_pull_that_fell_short_on_such_a_partner_before_completes_when_resumed(
    bootstrap: str, prefix: str
) -> None:
    """What the puller of before left after such a partner: its plan, and the window saved
    done but short after three readings (exit 5). The same command resumes it: the window is
    read again, narrowed, and the pull completes."""
    async with sandbox(sizes={"tokens": 3_000}, max_limit=250, unordered=True) as (base, state):
        pinned = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
        kafka = KafkaOutput(bootstrap, partitions=3)
        await kafka.start()
        try:
            topics = PullTopics.of(prefix, "tokens")
            await kafka.ensure_topics(topics.specs(digests=False))
            store = CheckpointStore(kafka, topics.checkpoints, "sbx", "tokens")
            spec = WindowSpec(index=0, date_from=None, date_to=pinned, expected=3_000)
            await store.save_plan(
                PullPlan(
                    pull_id="before-1",
                    partner="sbx",
                    module="tokens",
                    ocpi_version="2.2.1",
                    kind="full",
                    date_from=None,
                    date_to=pinned,
                    windows=[spec],
                    created_at=pinned,
                    window_size=20_000,
                    limit=1000,
                )
            )
            await store.save_window(
                WindowCheckpoint(
                    pull_id="before-1",
                    partner="sbx",
                    module="tokens",
                    window=0,
                    date_from=None,
                    date_to=pinned,
                    pinned_date_to=pinned,
                    next_offset=3_000,
                    total_at_offset=3_000,
                    done=True,
                    complete=False,
                    shortfall=187,
                    passes=3,
                    objects_emitted=2_813,
                    updated_at=pinned,
                )
            )
            await store.flush()
        finally:
            await kafka.stop()
        resumed = await pull_module(base, bootstrap, prefix, "tokens", pull_id="before-1")
        expected = truth_keys(state, "tokens", MODULE_VERSION, pinned_ms(resumed))
    summary = resumed.summaries[0]
    assert resumed.exit_code == 0, summary
    assert summary.resumed
    assert summary.narrowed_windows == 1
    assert set(await keys(bootstrap, f"{prefix}.tokens")) == set(expected)
