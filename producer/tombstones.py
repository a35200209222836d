"""Deletions (pitfall P13): tombstones for keys that a complete full pull no longer finds.

A pull-only client sees a deletion only as absence from a complete full snapshot. Tombstones
(null values) go to `<prefix>.<module>` and `<prefix>.digests` only when:
* the pull is complete, a full pull (no date_from, not incremental), not sharded, not resumed;
* objects updated during the pull (they left the pinned snapshot but still exist) are found by a
  catch-up read of `last_updated >= pinned date_to` and kept;
* no more than TOMBSTONE_MAX_FRACTION of the known keys would go at once (a partner that suddenly
  lists far fewer objects is more likely broken than emptied).
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from yarl import URL

from producer.kafka import OutMessage
from producer.keystate import KeyState, key_hash
from producer.ocpi.client import PageContext
from producer.ocpi.pagination import PageOutcome, WindowWalk
from producer.planning import page_url
from producer.window_pull import PullContext
from schemas import headers as h
from schemas.keys import ObjectKeyError, key_function
from schemas.records import PullPlan

TOMBSTONE_MAX_FRACTION = 0.10
TOMBSTONE_FLOOR = 100


def tombstones_refused(
    *, complete: bool, plan: PullPlan, shard_count: int, resumed: bool
) -> str | None:
    """Why this pull may not tombstone anything, or None when it may."""
    if not complete:
        return "the pull is incomplete"
    if plan.kind != "full" or plan.date_from is not None:
        return "not a full pull (date_from set or incremental)"
    if shard_count > 1:
        return "sharded pull: a shard sees only its own windows"
    if resumed:
        return "resumed pull: keys seen before the restart are not known here"
    return None


async def emit_tombstones(
    ctx: PullContext, keystate: KeyState, plan: PullPlan, partner: str
) -> tuple[int, str | None]:
    """Produce tombstones for the keys that disappeared; (how many, or why none)."""
    alive = await keys_changed_since(ctx, plan.date_to)
    gone = keystate.absent(alive)
    limit = max(TOMBSTONE_FLOOR, int(keystate.known * TOMBSTONE_MAX_FRACTION))
    if len(gone) > limit:
        return 0, (
            f"{len(gone)} of {keystate.known} known keys are absent, over the safety limit of "
            f"{limit}: check the partner before deleting anything"
        )
    names = await keystate.names_of(gone)
    common = [(h.PARTNER, partner.encode()), (h.PULL_ID, ctx.pull_id.encode())]
    await ctx.kafka.send_and_wait(
        ctx.topic, [OutMessage(name.encode(), None, common) for name in names]
    )
    await ctx.kafka.send_and_wait(
        keystate.topic, [keystate.tombstone_record(name) for name in names]
    )
    return len(names), None


async def keys_changed_since(ctx: PullContext, since: datetime) -> list[int]:
    """Key hashes of every object with last_updated >= since (a plain link walk)."""
    endpoint = ctx.endpoint
    walk = WindowWalk()
    hashes: list[int] = []
    make_key = key_function(endpoint.module, endpoint.ocpi_version, ctx.builder.identity)
    while not walk.finished:
        for request in walk.next_requests():
            url = (
                URL(request.url, encoded=True)
                if request.url is not None
                else page_url(
                    endpoint.url,
                    module=endpoint.module,
                    ocpi_version=endpoint.ocpi_version,
                    date_from=since,
                    date_to=None,
                    offset=request.offset,
                    limit=ctx.limit,
                )
            )
            page = await ctx.http.fetch_page(
                url, endpoint=endpoint.url, context=PageContext(), follow=request.url is not None
            )
            next_url = None if page.next_url is None else str(page.next_url)
            walk.on_page(
                request,
                PageOutcome(len(page.envelope.items), page.total, page.limit, next_url, None),
            )
            for item in page.envelope.items:
                with contextlib.suppress(ObjectKeyError):
                    hashes.append(key_hash(make_key(item)))
    return hashes
