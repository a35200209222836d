"""One key per object, whoever reads it and in whatever dialect the partner writes (issue 22, 1).

Every reader of a partner's pages reads objects through the one page reader: the window pull
(what reaches `<prefix>.tokens`), the tombstone catch-up read (`keys_changed_since`), `verify
--against-partner` (the partner's listing) and `PullClient`. Over real sockets, for every dialect
the sandbox speaks (alone, and all at once) in every OCPI version, each gives every object the
same key: the canonical one, the key of the object as the spec writes it.

And the bug this closes: a partner writing `rfid` for `RFID`, pulled twice with
`--emit-tombstones`, updating tokens during the second pull. The window pull keyed the lenient
reading (`…/RFID`), the catch-up read the object as sent (`…/rfid`): every token updated during
the pull was tombstoned while alive.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from producer.commands.verify import verify
from producer.kafka.digests import key_hash
from producer.ocpi.pull_client import PullClient
from producer.pull.tombstones import keys_changed_since
from sandbox.dialects import DIALECTS
from schemas.keys import PartnerIdentity
from schemas.records import WindowSpec
from tests.pull.support import window_context
from tests.support import TOKEN, keys, pinned_ms, pull, records, sandbox, settings, truth_keys

TOKENS = 150
DIALECT_SETS = [*((d,) for d in DIALECTS), DIALECTS]


@pytest.mark.parametrize("dialects", DIALECT_SETS, ids="+".join)
@pytest.mark.parametrize("version", ["2.1.1", "2.2.1", "2.3.0"])
async def test_every_reader_gives_every_object_its_one_key(
    bootstrap: str, prefix: str, version: str, dialects: tuple[Any, ...]
) -> None:
    async with sandbox(sizes={"tokens": TOKENS}, max_limit=40, dialects=dialects) as (base, state):
        # The window pull.
        result = await pull(base, bootstrap, prefix, ocpi_version=version, pull_id="one-key")
        expected = set(truth_keys(state, "tokens", version, pinned_ms(result)))
        pulled = set(await keys(bootstrap, f"{prefix}.tokens"))
        # PullClient.
        async with PullClient(
            f"{base}/ocpi/versions",
            token=TOKEN,
            module="tokens",
            ocpi_version=version,
            partner=PartnerIdentity("NL", "SBX"),
        ) as client:
            listed = {key async for page in client.pages() for key in page.keys}
        # verify --against-partner: the partner's listing against what is in Kafka.
        checked = await verify(
            settings(base, bootstrap, prefix, ocpi_version=version, pull_id="one-key"),
            against_partner=True,
        )
        # The tombstone catch-up read, through the pull's own context.
        everything = WindowSpec(index=0, date_from=None, date_to=datetime.now(UTC), expected=0)
        async with window_context(
            f"{base}/ocpi/emsp/{version}/tokens",
            bootstrap,
            prefix,
            everything,
            ocpi_version=version,
        ) as ctx:
            caught_up = await keys_changed_since(ctx, datetime(2000, 1, 1, tzinfo=UTC))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.dead_lettered == 0
    assert len(expected) == TOKENS
    assert pulled == expected
    assert listed == expected
    (report,) = checked.fields["pulls"]
    assert (report["missing"], report["unexpected"], report["partner_keys"]) == (0, 0, TOKENS)
    assert not isinstance(caught_up, str), caught_up
    assert sorted(caught_up) == sorted(key_hash(k) for k in expected)


async def test_tokens_updated_during_a_pull_in_lower_case_are_never_tombstoned(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 400}, dialects=("lowercase",)) as (base, state):
        options = {"ocpi_version": "2.2.1", "emit_tombstones": True}
        first = await pull(base, bootstrap, prefix, **options)
        assert first.exit_code == 0, first.summaries[0]
        dataset = state.datasets["tokens"]
        now = int(time.time() * 1000)
        # 60 live tokens: under the safety limit, so a wrong key would be tombstoned.
        updated = [dataset.update(i, now) for i in range(0, 300, 5)]
        # Pinned before the updates: they lie outside the snapshot, as updates made during a
        # pull do, and only the catch-up read finds them alive.
        pinned = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 5))
        second = await pull(base, bootstrap, prefix, date_to=pinned, **options)
        alive = set(truth_keys(state, "tokens", "2.2.1", now + 10_000))
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert len(updated) == 60
    assert summary.tombstones_skipped is None  # the catch-up read was complete...
    assert summary.tombstones == 0  # ...and found every updated token alive
    produced = await records(bootstrap, f"{prefix}.tokens")
    assert {r.key.decode() for r in produced} == alive
    assert all(r.value is not None for r in produced)
    assert all(key.endswith(("/RFID", "/APP_USER")) for key in alive)
