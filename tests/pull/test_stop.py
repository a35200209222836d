"""What an interrupted run says: a resume only when a pull had begun (pure)."""

from __future__ import annotations

import asyncio

from producer.pull.stop import StopRequest


async def test_a_stop_before_any_pull_began_says_nothing_was_pulled() -> None:
    stop = StopRequest(signal="SIGINT")
    assert str(stop.error()) == "stopped by SIGINT before any pull began: nothing pulled"


async def test_a_stop_during_a_pull_points_to_the_resume() -> None:
    stop = StopRequest(signal="SIGTERM")
    task = asyncio.create_task(asyncio.sleep(0))
    stop.pulls.add(task)
    await task
    assert "checkpoints are saved: run again with the same --pull-id" in str(stop.error())
