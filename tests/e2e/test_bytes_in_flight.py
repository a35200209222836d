"""Bytes in flight (`--max-bytes-in-flight`): a budget smaller than any page still pulls every
object, each once, under either delivery (each page then goes alone: at-least-once waits for
its acknowledgement, exactly-once commits it in its own unit)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support import keys, pinned_ms, pull, sandbox, truth_keys

LOCATIONS = 400


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_a_budget_smaller_than_a_page_still_pulls_every_object_once(
    bootstrap: str, prefix: str, delivery: str
) -> None:
    sizes = {"tokens": 0, "locations": LOCATIONS}
    async with sandbox(sizes=sizes, max_limit=50) as (base, state):
        result = await pull(
            base,
            bootstrap,
            prefix,
            module="locations",
            delivery=delivery,
            max_bytes_in_flight=1024,
            concurrency=4,
            fanout=4,
        )
        expected = set(truth_keys(state, "locations", "2.2.1", pinned_ms(result)))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.complete
    written = Counter(await keys(bootstrap, f"{prefix}.locations"))
    assert set(written) == expected
    assert len(expected) == LOCATIONS
    assert max(written.values()) == 1
