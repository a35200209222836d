"""The partner's keys within a pull's windows, listed again (fetch only): what `verify` compares
Kafka with. Every window is read through the page driver and the page reader and judged by the
one completeness rule, as a pull reads it (so every object has the key the pull gave it, in any
dialect); nothing is produced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from producer.errors import PullError
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.paging.pages import ListQuery, PageDriver
from producer.ocpi.paging.reader import PageReader
from producer.ocpi.paging.repair import LinkRepair
from producer.ocpi.paging.walk import ProbePastEnd, WalkStart
from producer.ocpi.planning.verdict import judge_walk
from producer.ocpi.protocol.versions import ModuleEndpoint
from schemas.keys import PartnerIdentity
from schemas.records import WindowSpec
from schemas.validation import ValidationMode


@dataclass(slots=True)
class Listing:
    """The keys the partner lists now within the windows' bounds."""

    keys: set[str] = field(default_factory=set)
    keyless: int = 0  # objects without a usable key (a pull dead-letters them)
    objects: int = 0
    pages: int = 0
    short_windows: list[int] = field(default_factory=list)  # windows the walk could not prove

    @property
    def complete(self) -> bool:
        """Whether every window's listing reached its end and its reported total."""
        return not self.short_windows


async def list_keys(
    http: OcpiHttp,
    endpoint: ModuleEndpoint,
    windows: Sequence[WindowSpec],
    *,
    limit: int,
    identity: PartnerIdentity | None,
    parallel: int,
    fanout: int = 1,
    probe_past_end: ProbePastEnd = "auto",
    repair: LinkRepair | None = None,
    validation: ValidationMode = "lenient",
) -> Listing:
    """Every key the partner lists in `windows`, `parallel` requests at a time."""
    reader = PageReader(endpoint.ocpi_version, endpoint.module, identity, validation)
    listing = Listing()
    slots = asyncio.Semaphore(parallel)
    repair = repair or LinkRepair()

    async def one(spec: WindowSpec) -> None:
        query = ListQuery(endpoint, spec.date_from, spec.date_to, limit)
        start = WalkStart(max_ahead=fanout, probe_past_end=probe_past_end)
        driver = PageDriver(http, query, start, slots=slots, window=spec.index, repair=repair)
        walk = driver.walk
        seen: set[str] = set()
        async with contextlib.aclosing(driver.pages()) as pages:
            async for fetched in pages:
                listing.pages += 1
                listing.objects += len(fetched.items)
                read = reader.read(fetched.items)
                for key, value in zip(read.keys, read.values, strict=True):
                    if key is None:
                        listing.keyless += 1
                        seen.add(value.decode("utf-8", "replace"))  # received, for the count
                    else:
                        listing.keys.add(key)
                        seen.add(key)
        verdict = judge_walk(walk, received=len(seen))
        if not verdict.complete:
            listing.short_windows.append(spec.index)

    try:
        async with asyncio.TaskGroup() as group:
            for spec in windows:
                group.create_task(one(spec))
    except BaseExceptionGroup as failures:
        # One window's error cancelled the others: report that error, not the group.
        errors = failures.subgroup(PullError)
        if errors is None:
            raise
        raise _first(errors) from None
    listing.short_windows.sort()
    return listing


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error
