"""The window loop by itself (`producer.pull.window.WindowPull`): pages → records → send → ack →
checkpoint, over real sockets (the sandbox partner or a scripted one, the embedded broker).

The sandbox's tokens are one second apart from 2020-01-01T00:00:00Z, so a window of seconds
[50, 200) holds objects 50..199: position p of the window is object 50 + p.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from producer.ocpi.planning.verdict import MAX_WINDOW_PASSES
from producer.pull.window import WindowPull
from sandbox.app import SandboxState
from sandbox.protocol import now_ms
from schemas.events import Warning_, WindowCompleted
from tests.pull.support import (
    HISTORY_START,
    events,
    produced_keys,
    resume_at,
    stored,
    window_context,
    window_spec,
    window_truth,
)
from tests.scripted_partner import PATH, offset_of, page, relay, serve, tokens
from tests.support import sandbox

SPEC = window_spec(
    HISTORY_START + timedelta(seconds=50), HISTORY_START + timedelta(seconds=200), expected=150
)
TOKENS = "/ocpi/emsp/2.2.1/tokens"
SIZES = {"tokens": 250}  # objects before and after the window too


def warnings(all_events: list[Any], code: str) -> list[Warning_]:
    return [e for e in all_events if isinstance(e, Warning_) and e.code == code]


async def test_a_window_is_pulled_whole(bootstrap: str, prefix: str) -> None:
    async with (
        sandbox(sizes=SIZES, max_limit=20) as (base, state),
        window_context(f"{base}{TOKENS}", bootstrap, prefix, SPEC, limit=20) as ctx,
    ):
        result = await WindowPull(ctx, SPEC, None).run()
        truth = window_truth(state, SPEC)
        produced = await produced_keys(ctx)
        checkpoint = (await stored(ctx)).windows[0]
        done = [e for e in await events(ctx) if isinstance(e, WindowCompleted)]
    assert len(truth) == 150
    assert sorted(produced) == sorted(truth)  # every object of the window, each once
    assert (result.complete, result.objects_emitted, result.distinct) == (True, 150, 150)
    assert (result.first_total, result.shortfall, result.passes, result.problem) == (
        150,
        0,
        1,
        None,
    )
    assert checkpoint.done
    assert checkpoint.complete
    assert (checkpoint.next_offset, checkpoint.total_at_offset) == (150, 150)
    assert checkpoint.objects_emitted == 150
    assert [(e.complete, e.objects_emitted, e.passes) for e in done] == [(True, 150, 1)]


async def test_a_resumed_window_pulls_only_the_rest(bootstrap: str, prefix: str) -> None:
    async with (
        sandbox(sizes=SIZES, max_limit=20) as (base, state),
        window_context(f"{base}{TOKENS}", bootstrap, prefix, SPEC, limit=20) as ctx,
    ):
        resume = resume_at(ctx, SPEC, offset=100, total=150, emitted=100)
        result = await WindowPull(ctx, SPEC, resume).run()
        truth = window_truth(state, SPEC)
        produced = await produced_keys(ctx)
        checkpoint = (await stored(ctx)).windows[0]
        pages = state.stats.pages_served
    assert sorted(produced) == sorted(truth[100:])
    assert pages == 3  # offsets 100, 120, 140
    assert result.complete
    assert result.objects_emitted == 150  # the 100 before the resume count too
    assert (checkpoint.done, checkpoint.complete, checkpoint.next_offset) == (True, True, 150)


async def test_a_shortfall_the_shrinking_total_explains_is_not_read_again(
    bootstrap: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        sandbox(sizes=SIZES, max_limit=20) as (base, state),
        window_context(f"{base}{TOKENS}", bootstrap, prefix, SPEC, limit=20) as ctx,
    ):
        deleted = delete_after_first_page(state, monkeypatch, index=190)
        result = await WindowPull(ctx, SPEC, None).run()
        truth = window_truth(state, SPEC)
        produced = await produced_keys(ctx)
        checkpoint = (await stored(ctx)).windows[0]
        short = warnings(await events(ctx), "window_short")
    assert deleted  # object 190 (position 140) went after the first page said 150
    assert len(truth) == 149
    assert set(produced) == set(truth)
    # 149 of the 150 the first page promised, and the partner's later pages say 149: the
    # shortfall is explained, the window complete after one reading.
    assert short == []
    assert (result.complete, result.passes, result.distinct) == (True, 1, 149)
    assert (checkpoint.done, checkpoint.complete, checkpoint.passes) == (True, True, 1)


async def test_an_unexplained_shortfall_is_read_again(
    bootstrap: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partner whose total stays at 150 while an object goes (a stale count) gives no reason
    for the missing object: the window is read again, and the second reading settles it."""
    requests: list[str] = []

    def stale_total_at_first(
        request: web.Request, status: int, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        requests.append(request.path_qs)
        if len(requests) <= 9:  # the whole first reading: offsets 0..140, and the probe at 149
            headers["X-Total-Count"] = "150"
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/json"
        )

    async with (
        sandbox(sizes=SIZES, max_limit=20) as (base, state),
        relay(base, stale_total_at_first) as partner,
        window_context(f"{partner}{TOKENS}", bootstrap, prefix, SPEC, limit=20) as ctx,
    ):
        delete_after_first_page(state, monkeypatch, index=190)
        result = await WindowPull(ctx, SPEC, None).run()
        truth = window_truth(state, SPEC)
        produced = await produced_keys(ctx)
        short = warnings(await events(ctx), "window_short")
    assert set(produced) == set(truth)
    assert [w.window for w in short] == [0]
    assert "149 distinct objects for a reported total of 150" in short[0].message
    assert (result.complete, result.passes, result.distinct) == (True, 2, 149)


def delete_after_first_page(
    state: SandboxState, monkeypatch: pytest.MonkeyPatch, index: int
) -> list[int]:
    """The partner deletes object `index` right after serving the first page (whose total was
    counted before), before any other page is served."""
    deleted: list[int] = []

    def mutate_after_serving(module: str, served: int) -> None:
        if not deleted:
            mutation = state.datasets[module].delete(index, now_ms())
            assert mutation is not None
            deleted.append(index)

    monkeypatch.setattr(state, "mutate_after_serving", mutate_after_serving)
    return deleted


async def test_a_replay_stretch_stops_once_the_chain_passes_it(bootstrap: str, prefix: str) -> None:
    # One page at a time (fanout 1): with fan-out, pages already in flight when the chain passes
    # stop_at are still produced (harmless), which would blur what this shows.
    async with (
        sandbox(sizes=SIZES, max_limit=20) as (base, state),
        window_context(f"{base}{TOKENS}", bootstrap, prefix, SPEC, limit=20, fanout=1) as ctx,
    ):
        # As replay.py starts a stretch: from a checkpoint position, nothing emitted yet.
        start = resume_at(ctx, SPEC, offset=40, total=150, emitted=0)
        result = await WindowPull(ctx, SPEC, start, stop_at=80).run()
        truth = window_truth(state, SPEC)
        produced = await produced_keys(ctx)
        pages = state.stats.pages_served
    assert sorted(produced) == sorted(truth[40:80])
    assert pages == 2  # offsets 40 and 60
    # A stretch is judged by its chain alone (the window's counts were judged before).
    assert (result.complete, result.shortfall, result.objects_emitted) == (True, 0, 40)


def cursor_pages(total: int, *, repeat_from: int) -> Any:
    """A hub-like partner: opaque cursor links (so the walk follows links, one page at a time),
    10 per page; from `repeat_from` on, a page's next link is the link that led to it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        start = int(request.query.get("cursor", request.query.get("offset", "0")))
        objects = tokens(start, min(10, total - start))
        following = start + len(objects)
        link = None
        if following < total:
            cursor = start if start >= repeat_from else following
            link = f'<{request.url.with_query(cursor=str(cursor))}>; rel="next"'
        return page(request, objects, total=str(total), link=link)

    return handler


async def test_a_pagination_loop_ends_the_window_incomplete_keeping_what_was_produced(
    bootstrap: str, prefix: str
) -> None:
    spec = window_spec(None, HISTORY_START.replace(year=2030))
    async with (
        serve(cursor_pages(100, repeat_from=20)) as base,
        window_context(f"{base}{PATH}", bootstrap, prefix, spec, limit=10) as ctx,
    ):
        result = await WindowPull(ctx, spec, None).run()
        produced = await produced_keys(ctx)
        checkpoint = (await stored(ctx)).windows[0]
        loops = warnings(await events(ctx), "pagination_loop")
    # Pages 0, 10 and 20 were good; the page after 20 repeated the link to 20.
    assert len(produced) == len(set(produced)) == 30
    assert not result.complete
    assert result.problem is not None
    assert result.problem.startswith("repeated_link: ")
    assert result.objects_emitted == 30
    assert result.passes == 1  # a loop is not cured by reading again
    # What was produced is acknowledged and checkpointed: a resume starts after it.
    assert (checkpoint.done, checkpoint.complete, checkpoint.next_offset) == (True, False, 30)
    assert [w.window for w in loops] == [0]


def short_list(total: int, listed: list[int]) -> Any:
    """A partner whose X-Total-Count says `total` but whose one page lists tokens `listed` (and
    whose next offset, probed, lists nothing)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        objects = [tokens(i, 1)[0] for i in listed] if offset_of(request) == 0 else []
        return page(request, objects, total=str(total), limit="50")

    return handler


async def test_a_window_that_stays_short_ends_incomplete_after_its_passes(
    bootstrap: str, prefix: str
) -> None:
    spec = window_spec(None, HISTORY_START.replace(year=2030))
    async with (
        serve(short_list(30, list(range(25)))) as base,
        window_context(f"{base}{PATH}", bootstrap, prefix, spec, limit=50) as ctx,
    ):
        result = await WindowPull(ctx, spec, None).run()
        checkpoint = (await stored(ctx)).windows[0]
        short = warnings(await events(ctx), "window_short")
    assert len(short) == MAX_WINDOW_PASSES - 1
    assert (result.complete, result.passes, result.shortfall) == (False, MAX_WINDOW_PASSES, 5)
    assert result.objects_emitted == 25  # the re-reads met the same objects: produced once
    assert (checkpoint.done, checkpoint.complete, checkpoint.shortfall) == (True, False, 5)


async def test_a_repeated_key_does_not_make_up_for_a_missing_object_on_a_re_read(
    bootstrap: str, prefix: str
) -> None:
    spec = window_spec(None, HISTORY_START.replace(year=2030))
    # Total 10, but 9 entries: tokens 0-7 and token 3 again. One object is missing.
    listed = [0, 1, 2, 3, 3, 4, 5, 6, 7]
    async with (
        serve(short_list(10, listed)) as base,
        window_context(f"{base}{PATH}", bootstrap, prefix, spec, limit=50) as ctx,
    ):
        result = await WindowPull(ctx, spec, None).run()
    assert not result.complete
    assert result.shortfall == 1
