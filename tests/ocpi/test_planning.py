"""plan_windows with its probe as a plain async function: the hint probe for the list's newest
object places cuts and nothing more; a partner that fails it, or is slow at deep offsets, is
planned without it, and the plan still tiles the range."""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
from yarl import URL

from producer.errors import PartnerProtocolError, PartnerUnavailableError
from producer.ocpi.planning import planning
from producer.ocpi.planning.planning import plan_windows
from producer.ocpi.protocol.envelope import Envelope
from producer.ocpi.protocol.query import from_epoch, to_epoch
from producer.ocpi.protocol.responses import FetchedPage

ENDPOINT = URL("http://partner.test/ocpi/emsp/2.2.1/tokens")
DAY = 86_400
END = datetime(2026, 12, 1, tzinfo=UTC)
FIRST = int(END.timestamp()) - 7 * 365 * DAY
# 100,000 objects written over one day, seven years before the pull.
STAMPS = [FIRST + i * DAY // 100_000 for i in range(100_000)]


def partner(deep: Callable[[], object] | None = None) -> tuple[planning.Probe, list[URL]]:
    """Counts and `limit=1` pages of STAMPS as a partner listing by last_updated would answer;
    `deep()` runs instead for any offset beyond 0."""
    asked: list[URL] = []

    async def probe(url: URL) -> FetchedPage:
        asked.append(url)
        offset = int(url.query.get("offset", "0"))
        if offset and deep is not None:
            result = deep()
            if asyncio.iscoroutine(result):
                await result
        since, until = url.query.get("date_from"), url.query.get("date_to")
        lo = 0 if since is None else bisect.bisect_left(STAMPS, _epoch(since))
        hi = bisect.bisect_left(STAMPS, _epoch(until))
        item = {"last_updated": from_epoch(STAMPS[lo + offset]).isoformat()} if hi > lo else None
        # A list page's objects are their JSON text (the page reader reads them).
        envelope = Envelope(1000, None, None, [orjson.dumps(item)] if item else [])
        return FetchedPage(url, "r", envelope, hi - lo, 1, None, None)

    return probe, asked


def _epoch(text: str | None) -> int:
    value = to_epoch(datetime.fromisoformat((text or "").replace("Z", "+00:00")))
    assert value is not None
    return value


async def plan(probe: planning.Probe) -> planning.PlannedWindows:
    return await plan_windows(
        probe, ENDPOINT, module="tokens", ocpi_version="2.2.1", date_from=None, date_to=END,
        window_size=20_000, parallel=8,
    )  # fmt: skip


def assert_tiles(planned: planning.PlannedWindows, *, within_target: bool = True) -> None:
    windows = planned.windows
    assert windows[0].date_from is None
    assert windows[-1].date_to == END
    assert all(a.date_to == b.date_from for a, b in itertools.pairwise(windows))
    assert sum(w.expected for w in windows) == len(STAMPS)
    assert planned.requests <= planning.planning_budget(len(STAMPS), 20_000)
    if within_target:
        assert all(w.expected <= 20_000 for w in windows)


async def test_the_newest_object_bounds_the_cuts() -> None:
    probe, asked = partner()
    planned = await plan(probe)
    assert_tiles(planned)
    assert len(asked) <= 9  # the total, the newest object, and a few counts


def refuse() -> None:
    raise PartnerProtocolError("not OCPI")


def fail() -> None:
    raise PartnerUnavailableError("kept failing")


@pytest.mark.parametrize("deep", [refuse, fail], ids=["refused", "unavailable"])
async def test_a_partner_failing_the_hint_probe_is_planned_without_it(
    deep: Callable[[], None],
) -> None:
    probe, asked = partner(deep)
    planned = await plan(probe)
    # Zoomed in from the oldest object alone, within planning's budget: one day of data seven
    # years back takes more counts to find than the budget allows for windows of the target
    # size, so some windows are larger (a window reads fine; only its size grows).
    assert_tiles(planned, within_target=False)
    assert len(asked) == planned.requests > 9


async def test_a_partner_slow_at_deep_offsets_costs_at_most_the_hint_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "HINT_PROBE_TIMEOUT_S", 0.05)
    probe, _ = partner(lambda: asyncio.sleep(3600))
    planned = await asyncio.wait_for(plan(probe), 10)
    assert_tiles(planned, within_target=False)
