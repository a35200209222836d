"""Digests written before xxh3 stay comparable (issue 26, 2): `--skip-unchanged` over a digests
topic whose records are all in the legacy form (blake2b, 16 hex digits) skips exactly the
unchanged objects, produces the changed ones, and rewrites only those records in the new form."""

from __future__ import annotations

import time

from producer.kafka.digests import legacy_content_digest, read_digest_value
from producer.kafka.output import KafkaOutput
from producer.kafka.records import OutMessage
from tests.support import just_after, pull, records, sandbox

TOKENS = 500
SCOPE = "sbx/tokens"


async def legacy_digests(bootstrap: str, prefix: str) -> int:
    """Overwrite every digest record with the one an earlier version wrote for its object."""
    latest = {r.key: r.value for r in await records(bootstrap, f"{prefix}.tokens")}
    kafka = KafkaOutput(bootstrap, partitions=3)
    await kafka.start()
    try:
        await kafka.send_and_wait(
            f"{prefix}.digests",
            [
                OutMessage(
                    f"{SCOPE}/{key.decode()}".encode(),
                    b"%016x" % legacy_content_digest(value),
                    [],
                    partition_key=SCOPE.encode(),
                )
                for key, value in latest.items()
            ],
        )
    finally:
        await kafka.stop()
    return len(latest)


async def digest_kinds(bootstrap: str, prefix: str) -> dict[str, bool]:
    """Per object key, whether its latest digest record is legacy."""
    found: dict[str, bool] = {}
    for record in await records(bootstrap, f"{prefix}.digests"):
        if record.value is not None:
            found[record.key.decode()] = read_digest_value(record.value)[1]
    return found


async def test_legacy_digests_are_compared_by_the_function_that_made_them(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=200) as (base, state):
        first = await pull(base, bootstrap, prefix, skip_unchanged=True)
        assert first.summaries[0].objects_emitted == TOKENS
        assert set((await digest_kinds(bootstrap, prefix)).values()) == {False}
        assert await legacy_digests(bootstrap, prefix) == TOKENS
        assert set((await digest_kinds(bootstrap, prefix)).values()) == {True}
        dataset = state.datasets["tokens"]
        now = int(time.time() * 1000)
        for i in range(0, 100, 10):  # 10 real changes
            dataset.update(i, now)
        for i in range(200, 240):  # 40 objects whose last_updated moves, content does not (P8)
            dataset.update(i, now, touch=True)
        date_to = just_after(now)  # the changes lie before the second pull's date_to
        second = await pull(base, bootstrap, prefix, skip_unchanged=True, date_to=date_to)
        third = await pull(base, bootstrap, prefix, skip_unchanged=True, date_to=date_to)
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert (summary.objects_emitted, summary.skipped_unchanged) == (10, TOKENS - 10)
    kinds = await digest_kinds(bootstrap, prefix)
    assert sum(not legacy for legacy in kinds.values()) == 10  # rewritten as they were produced
    assert (third.summaries[0].objects_emitted, third.summaries[0].skipped_unchanged) == (
        0,
        TOKENS,
    )
