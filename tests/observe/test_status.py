"""Folding progress events into a pull's status (pure): interrupted, stale, heartbeats, events of
a newer puller, and a pull id run afresh after `reset`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producer.observe.status import (
    DEFAULT_HEARTBEAT_S,
    OtherEvent,
    PullStatus,
    Statuses,
    fold,
)
from schemas.events import PullCompleted, PullFailed, PullStarted, WindowCompleted

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = {"pull_id": "p", "partner": "sbx", "module": "tokens"}


def started(at: datetime, *, resumed: bool = False) -> PullStarted:
    return PullStarted(
        **BASE, at=at, url="https://x/tokens", kind="full", date_from=None, date_to=at,
        windows_total=2, windows_this_shard=2, total_reported=10, resumed=resumed,
    )  # fmt: skip


def window_done(at: datetime, index: int) -> WindowCompleted:
    return WindowCompleted(
        **BASE, at=at, window=index, date_from=None, date_to=at, complete=True,
        objects_emitted=5, distinct_objects=5, first_total=5, shortfall=0, passes=1, step_backs=0,
    )  # fmt: skip


def heartbeat(at: datetime, every_s: float | None) -> OtherEvent:
    return OtherEvent(event="heartbeat", **BASE, at=at, heartbeat_s=every_s)


def only(statuses: Statuses) -> PullStatus:
    (status,) = statuses.values()
    return status


def test_a_pull_stopped_by_a_signal_is_interrupted_not_failed() -> None:
    statuses: Statuses = {}
    fold(statuses, started(T0))
    fold(
        statuses,
        PullFailed(
            **BASE,
            at=T0,
            reason="interrupted",
            message="stopped by a signal",
            objects_emitted=3,
            duration_s=1.0,
            resumable=True,
        ),
    )
    assert only(statuses).state_at(T0 + timedelta(days=1)) == "interrupted"


@pytest.mark.parametrize(
    ("every_s", "silent_s", "state"),
    [
        (None, 3 * DEFAULT_HEARTBEAT_S, "running"),  # exactly three: not yet
        (None, 3 * DEFAULT_HEARTBEAT_S + 1, "stale"),
        (10.0, 30.0, "running"),
        (10.0, 31.0, "stale"),
        (60.0, 150.0, "running"),
    ],
)
def test_a_running_pull_silent_for_three_heartbeats_is_stale(
    every_s: float | None, silent_s: float, state: str
) -> None:
    statuses: Statuses = {}
    fold(statuses, started(T0))
    fold(statuses, heartbeat(T0, every_s))
    assert only(statuses).state_at(T0 + timedelta(seconds=silent_s)) == state


def test_an_ended_pull_is_never_stale() -> None:
    statuses: Statuses = {}
    fold(statuses, started(T0))
    fold(
        statuses,
        PullFailed(
            **BASE,
            at=T0,
            reason="partner_auth",
            message="401",
            objects_emitted=0,
            duration_s=1.0,
            resumable=False,
        ),
    )
    assert only(statuses).state_at(T0 + timedelta(days=3)) == "failed"


def test_an_event_of_a_newer_puller_is_a_sign_of_life() -> None:
    statuses: Statuses = {}
    fold(statuses, started(T0))
    later = T0 + timedelta(seconds=500)
    fold(statuses, OtherEvent(event="something_new", **BASE, at=later))
    status = only(statuses)
    assert (status.last_event, status.state_at(later + timedelta(seconds=5))) == (
        "something_new",
        "running",
    )


def test_a_pull_id_run_afresh_counts_from_zero_and_a_resume_does_not() -> None:
    statuses: Statuses = {}
    fold(statuses, started(T0))
    fold(statuses, window_done(T0, 0))
    fold(statuses, window_done(T0, 1))
    assert only(statuses).windows_done == 2
    fold(statuses, started(T0 + timedelta(hours=1), resumed=True))
    assert only(statuses).windows_done == 2  # a resume goes on from where it was
    fold(statuses, started(T0 + timedelta(hours=2)))  # the same id after `reset`
    assert only(statuses).windows_done == 0
    assert only(statuses).started_at == (T0 + timedelta(hours=2)).isoformat()


def test_a_window_ended_twice_is_one_window_and_never_more_than_planned() -> None:
    """A window read again (a resume, a rewind after Kafka lost commits) ends twice."""
    statuses: Statuses = {}
    fold(statuses, started(T0))
    for index in (0, 0, 1, 1, 1):
        fold(statuses, window_done(T0, index))
    assert only(statuses).windows_done == 2


def test_a_complete_pull_has_every_window_done() -> None:
    """Windows that ended before a resume sent their events then; complete means all of them."""
    statuses: Statuses = {}
    fold(statuses, started(T0, resumed=True))
    fold(statuses, window_done(T0, 1))
    completed = PullCompleted(
        **BASE, at=T0, complete=True, objects_emitted=10, pages=2, dead_lettered=0,
        retries=0, total_reported=10, duration_s=1.0, windows_complete=2,
        windows_incomplete=0, shortfall=0, skipped_unchanged=0, tombstones=0,
    )  # fmt: skip
    fold(statuses, completed)
    assert only(statuses).windows_done == 2
