"""A pull's windows side by side: which to pull, which a resume finds finished, and the first
error that ends them all."""

from __future__ import annotations

import asyncio

from producer.errors import PullError
from producer.kafka.checkpoints import StoredState
from producer.pull.context import PullContext
from producer.pull.verdict import WindowResult
from producer.pull.window import WindowPull
from schemas.records import WindowCheckpoint, WindowSpec


async def pull_windows(
    ctx: PullContext, windows: list[WindowSpec], state: StoredState
) -> list[WindowResult]:
    """This shard's windows, `concurrency` at a time; windows a resume finds done are taken from
    their checkpoints. One window's fatal error ends them all, with that error."""
    slots = asyncio.Semaphore(ctx.options.windows_at_once)
    results: list[WindowResult] = []

    async def one(spec: WindowSpec) -> None:
        checkpoint = state.windows.get(spec.index)
        if checkpoint is not None and checkpoint.finished:
            results.append(result_from_checkpoint(checkpoint))
            return
        if checkpoint is not None and checkpoint.done:
            checkpoint = None  # it ended short: read it again, whole
        async with slots:
            results.append(await WindowPull(ctx, spec, checkpoint).run())

    try:
        async with asyncio.TaskGroup() as group:
            for spec in windows:
                group.create_task(one(spec))
    except BaseExceptionGroup as failures:
        raise first_pull_error(failures) from None
    return sorted(results, key=lambda r: r.index)


def result_from_checkpoint(checkpoint: WindowCheckpoint) -> WindowResult:
    """A window finished before a resume, as its checkpoint tells it."""
    return WindowResult(
        checkpoint.window,
        checkpoint.complete,
        checkpoint.objects_emitted,
        checkpoint.objects_emitted,
        None,
        checkpoint.shortfall,
        checkpoint.passes,
    )


def first_pull_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first PullError in a (nested) exception group, else the group itself."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found = first_pull_error(error)
            if isinstance(found, PullError):
                return found
        elif isinstance(error, PullError):
            return error
    return group
