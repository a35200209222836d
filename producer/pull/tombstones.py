"""Deletions (docs/partners.md, P13): tombstones for keys that a complete full pull no longer finds.

A pull-only client sees a deletion only as absence from a complete full snapshot. Tombstones
(null values) go to `<prefix>.<module>` and `<prefix>.digests` only when:
* the pull is complete, a full pull (no date_from, not incremental), not sharded, not resumed;
* every window's count was checked against the partner's X-Total-Count (reported, and never
  contradicted by a page), and no object was listed that its window's date filter excludes;
* objects updated during the pull (they left the pinned snapshot but still exist) are found by a
  complete catch-up read of `last_updated >= pinned date_to` (through the same page driver and
  completeness rule as the pull: a read cut short by a refused or gone link, a pagination loop or
  a shortfall tombstones nothing);
* no more than TOMBSTONE_MAX_FRACTION of the known keys would go at once (a partner that suddenly
  lists far fewer objects is more likely broken than emptied).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from producer.errors import PullError
from producer.kafka.digests import key_hash
from producer.kafka.keystate import KeyState
from producer.kafka.records import OutMessage
from producer.ocpi.paging.pages import ListQuery, PageDriver
from producer.ocpi.planning.verdict import judge_walk
from producer.pull.context import PullContext
from producer.pull.counters import PullCounters
from schemas import headers as h
from schemas.records import PullPlan

TOMBSTONE_MAX_FRACTION = 0.10
TOMBSTONE_FLOOR = 100


def tombstones_refused(
    *,
    complete: bool,
    plan: PullPlan,
    shard_count: int,
    resumed: bool,
    counters: PullCounters,
) -> str | None:
    """Why this pull may not tombstone anything, or None when it may."""
    if not complete:
        return "the pull is incomplete"
    # Absence proves a deletion only where every window's count was checked against the
    # partner's total: without totals (or with totals a page contradicted), changes during the
    # pull can shift an object past every page unseen, and it would be tombstoned alive.
    if not plan.totals_reported:
        return "the partner sends no X-Total-Count: no window's count could be checked"
    if counters.totals_unreliable:
        return (
            f"{counters.totals_unreliable} window(s) had totals a page contradicted: their "
            "counts could not be checked"
        )
    # Objects listed that the date filter excludes however its bounds are read: the filter is
    # off, and an object near a window's bound may be listed by no window.
    if counters.filter_contradicted:
        return (
            f"{counters.filter_contradicted} object(s) were listed outside their window's dates: "
            "the partner's date filter is off, and may list some objects in no window"
        )
    if plan.kind != "full" or plan.date_from is not None:
        return "not a full pull (date_from set or incremental)"
    if shard_count > 1:
        return "sharded pull: a shard sees only its own windows"
    if resumed:
        return "resumed pull: keys seen before the restart are not known here"
    return None


async def tombstones_after(
    ctx: PullContext,
    plan: PullPlan,
    *,
    complete: bool,
    resumed: bool,
    shard_count: int,
    overlap_s: float,
) -> tuple[int, str | None]:
    """Tombstones for a pull that may emit them; (how many, or why none). The catch-up read
    reaches `overlap_s` before the pinned date_to, or as far as the partner's clock lags."""
    assert ctx.keystate is not None
    refused = tombstones_refused(
        complete=complete,
        plan=plan,
        shard_count=shard_count,
        resumed=resumed,
        counters=ctx.counters,
    )
    if refused is not None:
        return 0, refused
    skew = ctx.http.clock.estimate
    margin = max(overlap_s, 0.0 if skew is None else abs(skew.skew_s))
    return await emit_tombstones(ctx, ctx.keystate, plan.date_to - timedelta(seconds=margin))


async def emit_tombstones(
    ctx: PullContext, keystate: KeyState, catch_up_from: datetime
) -> tuple[int, str | None]:
    """Produce tombstones for the keys that disappeared; (how many, or why none). Objects with a
    last_updated from `catch_up_from` on exist whether or not the pull saw them.

    Never raises a PullError: a failed catch-up read or produce is a reason to skip."""
    try:
        alive = await keys_changed_since(ctx, catch_up_from)
    except PullError as error:
        return 0, f"the catch-up read of objects updated during the pull failed: {error}"
    if isinstance(alive, str):
        return 0, alive
    gone = keystate.absent(alive)
    limit = max(TOMBSTONE_FLOOR, int(keystate.known * TOMBSTONE_MAX_FRACTION))
    if len(gone) > limit:
        return 0, (
            f"{len(gone)} of {keystate.known} known keys are absent, over the safety limit of "
            f"{limit}: check the partner before deleting anything"
        )
    try:
        names = await keystate.names_of(gone)
        common = [(h.PARTNER, ctx.partner.encode()), (h.PULL_ID, ctx.pull_id.encode())]
        await ctx.kafka.send_and_wait(
            ctx.topics.objects, [OutMessage(name.encode(), None, common) for name in names]
        )
        await ctx.kafka.send_and_wait(
            keystate.topic, [keystate.tombstone_record(name) for name in names]
        )
    except PullError as error:
        return 0, f"producing tombstones failed: {error}"
    return len(names), None


async def keys_changed_since(ctx: PullContext, since: datetime) -> list[int] | str:
    """Key hashes of every object with last_updated >= since, or why the read is not complete."""
    endpoint = ctx.endpoint
    query = ListQuery(endpoint, since, None, ctx.limit)
    driver = PageDriver(ctx.http, query, repair=ctx.repair)
    hashes: list[int] = []
    distinct: set[int] = set()
    async with contextlib.aclosing(driver.pages()) as pages:
        async for fetched in pages:
            # The pull's own reader: the same key for an object as the window pull gave it.
            read = ctx.reader.read(fetched.items)
            for key, value in zip(read.keys, read.values, strict=True):
                if key is None:
                    hashed = hash(value)  # keyless objects still count as received
                else:
                    hashed = key_hash(key)
                    hashes.append(hashed)
                distinct.add(hashed)
    walk = driver.walk
    verdict = judge_walk(walk, received=len(distinct))
    if not verdict.complete:
        return (
            f"the catch-up read of objects updated during the pull fell short: "
            f"{len(distinct)} distinct objects for a reported total of {walk.first_total}"
        )
    return hashes
