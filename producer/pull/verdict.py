"""A pull's verdict from its windows, and what to re-read after a broker outage. Pure.

A window's own completeness is judged by `ocpi.planning.verdict` (shared with every reader of
pages); this module judges the pull: every planned window must report, and it is complete only
when every window is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from producer.errors import IncompletePullError
from producer.kafka.durability import Written


@dataclass(frozen=True, slots=True)
class AckMark:
    """A window's state at one acknowledgement."""

    at: float  # monotonic time
    position: int  # the checkpoint position after it
    total: int | None  # the total then
    furthest: int  # the end of the furthest page acknowledged
    # Where the page's records ended in Kafka: (topic, partition) -> last offset.
    marks: Mapping[tuple[str, int], Written] | None = None


@dataclass(frozen=True, slots=True)
class WindowResult:
    """How a window ended."""

    index: int
    complete: bool
    objects_emitted: int
    distinct: int
    first_total: int | None
    shortfall: int
    passes: int
    problem: str | None = None
    # Where to replay from, and to, if the broker lost recently acknowledged writes.
    ack_history: tuple[AckMark, ...] = ()


@dataclass(frozen=True, slots=True)
class PullVerdict:
    """The pull's completeness from its windows' results."""

    complete: bool
    windows_incomplete: int
    shortfall: int
    problems: tuple[str, ...]


def judge_pull(results: Sequence[WindowResult], planned: Iterable[int]) -> PullVerdict:
    """Complete only when every planned window reported and every window is complete."""
    missing = set(planned) - {r.index for r in results}
    if missing:
        # Every planned window must report; one that vanished is never taken for done.
        raise IncompletePullError(
            f"{len(missing)} window(s) ended without a result: {sorted(missing)[:10]}"
        )
    incomplete = [r for r in results if not r.complete]
    problems = tuple(dict.fromkeys(r.problem for r in incomplete if r.problem))
    return PullVerdict(
        complete=not incomplete,
        windows_incomplete=len(incomplete),
        shortfall=sum(r.shortfall for r in incomplete),
        problems=problems,
    )


@dataclass(frozen=True, slots=True)
class Replay:
    """A stretch of a window to read again: from `offset` (total then) up to `stop_at`."""

    offset: int
    total: int | None
    stop_at: int


def replay_before_outages(
    history: tuple[AckMark, ...], outages: list[float], replay_s: float
) -> Replay | None:
    """What of a window must be read again after broker outages, or None.

    A broker that restarts may lose writes it acknowledged shortly before (noida-db does so for
    requests it answers while shutting down; so can a single-replica Kafka on a crash). Every
    position acknowledged within `replay_s` before an outage was noticed is suspect, up to the end
    of the furthest page acknowledged when it was noticed (pages are acknowledged out of order;
    what was acknowledged after the broker came back is durable). The stretch starts at the
    checkpoint position of the window before the suspect time.
    """
    if not history or replay_s <= 0:
        return None
    start: AckMark | None = None  # the mark the stretch starts from
    stop = 0
    for outage in outages:
        cutoff = outage - replay_s
        if not any(cutoff < entry.at <= outage for entry in history):
            continue  # nothing was acknowledged in the suspect time
        before = [entry for entry in history if entry.at <= cutoff] or [history[0]]
        at_outage = [entry for entry in history if entry.at <= outage] or [history[0]]
        end = at_outage[-1].furthest
        if end <= before[-1].position:
            continue  # nothing was acknowledged in the suspect time
        if start is None or before[-1].position < start.position:
            start = before[-1]
        stop = max(stop, end)
    return None if start is None else Replay(start.position, start.total, stop)


def replay_after_loss(
    history: tuple[AckMark, ...], lost: Callable[[AckMark], bool]
) -> Replay | None:
    """What of a window to write again when Kafka lost acknowledged writes (`lost` says which
    acknowledgements it lost), or None. The whole window read so far: a page whose records were
    lost may hold objects that had shifted behind the checkpoint of its time (a step-back), so
    nothing short of the window's start is sure to hold them."""
    if not any(lost(entry) for entry in history):
        return None
    return Replay(0, None, max(entry.furthest for entry in history))
