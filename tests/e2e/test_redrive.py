"""`ocpi-puller redrive` (issue 25): a pull's dead letters validated again under the current
models and `--validation`; those that pass go to the object topic (the same key, headers naming
the redrive), the rest stay; `--dry-run` counts; a second redrive writes nothing twice; with
`--delivery exactly-once` a read_committed consumer sees them. Real broker, real sandbox."""

from __future__ import annotations

import json
from collections import Counter

from producer.kafka.consume import read_topic
from schemas import headers as h
from tests.support import TOKEN, pull, records, run_cli, sandbox, truth_keys

README = "README.md"


async def test_dead_letters_that_now_pass_are_redriven_once(bootstrap: str, prefix: str) -> None:
    # Strict validation dead-letters the partner's lower-case enums; 5% are invalid anyway.
    async with sandbox(sizes={"tokens": 400}, max_limit=100, dialects=("lowercase",),
                       invalid_rate=0.05) as (base, state):  # fmt: skip
        pulled = await pull(base, bootstrap, prefix, pull_id="strict-1", validation="strict",
                            ocpi_version="2.2.1")  # fmt: skip
        expected = truth_keys(state, "tokens", "2.2.1", 10**15)  # the valid ones
    summary = pulled.summaries[0]
    assert (summary.objects_emitted, summary.dead_lettered) == (0, 400)
    invalid = 400 - len(expected)
    assert invalid > 0

    common = ("redrive", "--pull-id", "strict-1", "--bootstrap-servers", bootstrap,
              "--topic-prefix", prefix, "--output", "json")  # fmt: skip
    code, out, err = await run_cli(*common, "--dry-run")
    assert code == 0, err
    (line,) = out.splitlines()
    dry = json.loads(line)
    assert (dry["dry_run"], dry["dead_letters"], dry["redriven"]) == (True, 400, len(expected))
    assert dry["still_invalid"] == invalid
    assert await records(bootstrap, f"{prefix}.tokens") == []  # a dry run writes nothing

    code, out, err = await run_cli(*common)  # --validation lenient, the default
    assert code == 0, err
    done = json.loads(out)
    assert (done["command"], done["redriven"], done["still_invalid"]) == (
        "redrive", len(expected), invalid
    )  # fmt: skip
    produced = await records(bootstrap, f"{prefix}.tokens")
    assert {r.key.decode() for r in produced} == set(expected)  # the same keys as a pull's
    for record in produced:
        headers = dict(record.headers)
        assert headers[h.REDRIVE_ID] == done["redrive_id"].encode()
        assert headers[h.PULL_ID] == b"strict-1"
        assert h.SOURCE_OFFSET in headers
    assert len(await records(bootstrap, f"{prefix}.deadletter")) == 400  # left where they were

    # Again: every key was written after its letter failed, so nothing moves twice.
    code, out, err = await run_cli(*common[:-2], env={"COLUMNS": "80"})
    assert code == 0, err
    assert "moved: 0 now valid" in out
    assert f"{len(expected)} superseded" in out
    assert (
        Counter(r.key for r in await records(bootstrap, f"{prefix}.tokens")).most_common(1)[0][1]
        == 1
    )


async def test_an_exactly_once_redrive_is_seen_by_read_committed_consumers(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 150}, max_limit=50, dialects=("lowercase",)) as (base, _):
        await pull(base, bootstrap, prefix, pull_id="strict-2", validation="strict")
    code, out, err = await run_cli(
        "redrive", "--pull-id", "strict-2", "--bootstrap-servers", bootstrap,
        "--topic-prefix", prefix, "--delivery", "exactly-once", "--output", "json",
        env={"OCPI_PULLER_TOKEN": TOKEN},
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["redriven"] == 150
    committed = [
        r async for r in read_topic(bootstrap, f"{prefix}.tokens", isolation_level="read_committed")
    ]
    assert len({r.key for r in committed}) == 150


async def test_a_pull_nobody_knows_is_a_config_error(bootstrap: str, prefix: str) -> None:
    code, _, err = await run_cli(
        "redrive", "--pull-id", "no-such-pull", "--bootstrap-servers", bootstrap,
        "--topic-prefix", prefix,
    )  # fmt: skip
    assert code == 2
    assert err.startswith("ocpi-puller: config: no pull no-such-pull on ")
