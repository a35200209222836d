"""The pull pipeline end to end: sandbox over HTTP, noida-db (or Kafka) over TCP, consumed back."""

from __future__ import annotations

import pytest

from producer.config import PullSettings
from sandbox.faults import FaultRates
from tests.support import keys, pinned_ms, pull, records, sandbox, truth_keys


async def assert_exactly_once(bootstrap: str, prefix: str, module: str, expected: set[str]) -> None:
    produced = await keys(bootstrap, f"{prefix}.{module}")
    assert len(produced) == len(set(produced)), "a key was produced twice"
    assert set(produced) == expected


@pytest.mark.parametrize(
    ("module", "version", "link_style", "size"),
    [
        ("tokens", "2.2.1", "absolute", 100_000),
        ("tokens", "2.1.1", "relative", 100_000),
        ("tokens", "2.2.1", "one-shot", 100_000),
        ("locations", "2.2.1", "absolute", 20_000),
        ("locations", "2.1.1", "one-shot", 20_000),
    ],
)
async def test_every_object_arrives_exactly_once(
    bootstrap: str, prefix: str, module: str, version: str, link_style: str, size: int
) -> None:
    # Server cap 400 below the asked limit 1000: the puller must follow what the server returns.
    async with sandbox(sizes={module: size}, max_limit=400, link_style=link_style) as (base, state):
        result = await pull(
            base, bootstrap, prefix, module=module, ocpi_version=version, limit=1000
        )
        summary = result.summaries[0]
        assert result.exit_code == 0, summary
        assert summary.complete
        assert summary.objects_emitted == size
        assert summary.total_reported == size
        expected = truth_keys(state, module, version, pinned_ms(result))
    assert len(expected) == size
    await assert_exactly_once(bootstrap, prefix, module, set(expected))


async def test_module_url_without_discovery(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tariffs": 300}) as (base, state):
        result = await pull(
            base, bootstrap, prefix, url=f"{base}/ocpi/cpo/2.2.1/tariffs", module=None
        )
        assert result.exit_code == 0
        expected = truth_keys(state, "tariffs", "2.2.1", pinned_ms(result))
    await assert_exactly_once(bootstrap, prefix, "tariffs", set(expected))


async def test_faults_are_retried_and_the_pull_is_still_complete(
    bootstrap: str, prefix: str
) -> None:
    faults = FaultRates(error=0.05, throttle=0.03, reset=0.03, stall=0.01, envelope_error=0.03)
    async with sandbox(
        sizes={"tokens": 20_000}, max_limit=200, faults=faults, stall_seconds=3.0
    ) as (base, state):
        result = await pull(base, bootstrap, prefix, request_timeout_s=1.0, max_attempts=10)
        summary = result.summaries[0]
        assert result.exit_code == 0, summary
        assert summary.retries > 0
        seen = state.stats.faults
        expected = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    assert {"error", "throttle", "reset", "envelope_error"} <= set(seen)
    await assert_exactly_once(bootstrap, prefix, "tokens", set(expected))


async def test_an_endpoint_that_does_not_exist_is_partner_not_found(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 10}) as (base, _):
        result = await pull(base, bootstrap, prefix, url=f"{base}/ocpi/emsp/2.2.1/nothing-here")
    summary = result.summaries[0]
    assert (result.exit_code, summary.error_kind) == (3, "partner_not_found"), summary


async def test_wrong_token_fails_fast_with_the_auth_exit_code(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 10}) as (base, state):
        result = await pull(base, bootstrap, prefix, token="not-the-token")
        requests = sum(state.stats.requests.values()) + state.stats.statuses[401]
    summary = result.summaries[0]
    assert result.exit_code == 3
    assert summary.error_kind == "partner_auth"
    assert not summary.complete
    assert "not-the-token" not in (summary.error or "")
    assert requests <= 4  # one try per encoding, no retry loop


async def test_auto_token_encoding_falls_back_to_plain(bootstrap: str, prefix: str) -> None:
    # Many 2.2 partners do not Base64-encode (ocpi/ocpi#212): auto retries plain once.
    async with sandbox(sizes={"tokens": 50}, token_encoding="plain") as (base, _):
        result = await pull(base, bootstrap, prefix)
    assert result.exit_code == 0
    assert result.summaries[0].objects_emitted == 50


async def test_invalid_objects_go_to_the_dead_letter_topic(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 3000}, invalid_rate=0.05, max_limit=250) as (base, state):
        result = await pull(base, bootstrap, prefix)
        dataset = state.datasets["tokens"]
        invalid = {i for i in range(3000) if dataset.invalid_kind(i) is not None}
        valid = truth_keys(state, "tokens", "2.2.1", pinned_ms(result))
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.dead_lettered == len(invalid) > 50
    assert summary.objects_emitted + summary.dead_lettered == 3000
    await assert_exactly_once(bootstrap, prefix, "tokens", set(valid))
    import orjson

    dead = [orjson.loads(r.value) for r in await records(bootstrap, f"{prefix}.deadletter")]
    assert len(dead) == len(invalid)
    assert all(d["errors"] and d["pull_id"] == summary.pull_id for d in dead)
    assert {d["source_offset"] for d in dead} == invalid  # no mutation: offset = index
    missing_id = [d for d in dead if "uid" not in d["object"]]
    assert missing_id
    assert all(d["key"] is None for d in missing_id)


def test_settings_repr_hides_the_token() -> None:
    settings = PullSettings(url="http://x/ocpi/versions", token="s3cret-token", module="tokens")
    assert "s3cret-token" not in repr(settings)
    assert "s3cret-token" not in str(settings)
