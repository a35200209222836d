"""`ocpi-puller verify` over real sockets: a pull's keys, duplicates and dead letters read back
from Kafka by their pull-id header; with --against-partner, the partner's keys listed again
within the pull's snapshot bounds. An interrupted pull is found short (exit 5) until resumed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from producer.commands.verify import verify
from producer.config import PullSettings
from tests.e2e.test_status import statuses
from tests.support import TOKEN, pull, run_cli, run_pull, sandbox, settings


async def test_verify_counts_keys_duplicates_and_dead_letters_of_one_pull(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 2000}, invalid_rate=0.02) as (base, _):
        first = await pull(base, bootstrap, prefix, pull_id="v1", window_size=700)
        # Another pull of the same module: its messages are not v1's.
        again = await pull(base, bootstrap, prefix, pull_id="v2")
        kafka = ["--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
        code, out, err = await run_cli("verify", "--pull-id", "v1", *kafka, "--output", "json")
        against = await run_cli(
            "verify", "--pull-id", "v1", *kafka, "--against-partner",
            "--url", f"{base}/ocpi/versions", "--output", "json",
            env={"OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
        text = await run_cli(
            "verify", "--pull-id", "v1", *kafka, "--against-partner",
            "--url", f"{base}/ocpi/versions", "--token", TOKEN,
        )  # fmt: skip
    summary = first.summaries[0]
    assert (first.exit_code, again.exit_code) == (0, 0)
    assert summary.dead_lettered > 0
    assert code == 0, err
    report = json.loads(out)
    assert (report["command"], report["pull_id"], report["complete"]) == ("verify", "v1", True)
    (found,) = report["pulls"]
    assert (found["partner"], found["module"], found["plan_completed"]) == ("sbx", "tokens", True)
    assert found["messages"] == found["distinct_keys"] == summary.objects_emitted
    assert (found["duplicates"], found["tombstones"]) == (0, 0)
    assert found["dead_letters"] == summary.dead_lettered
    assert found["against_partner"] is False
    assert "missing" not in found

    code, out, err = against
    assert code == 0, err
    (checked,) = json.loads(out)["pulls"]
    assert checked["listing_complete"] is True
    assert (checked["missing"], checked["unexpected"]) == (0, 0)
    # Every key the partner lists is either in Kafka or dead-lettered.
    assert checked["partner_keys"] + checked["partner_keyless"] == 2000
    assert checked["partner_keys"] >= checked["distinct_keys"]
    assert TOKEN not in out + err

    code, out, _ = text
    assert code == 0
    assert "in Kafka: " in out
    assert "missing: 0; unexpected: 0" in out


async def test_an_interrupted_pull_is_short_until_it_is_resumed(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 20_000}, max_limit=100, latency_ms=40) as (base, _):
        puller = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "producer.cli", "pull",
            "--url", f"{base}/ocpi/versions", "--module", "tokens",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--partner", "sbx",
            "--pull-id", "cut", "--concurrency", "1", "--fanout", "1", "--output", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
        while not any(s.objects_emitted > 0 for s in await statuses(bootstrap, prefix)):
            await asyncio.sleep(0.1)
        puller.send_signal(signal.SIGTERM)
        await puller.communicate()
        assert puller.returncode == 130

        kafka = ["--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
        partner = ["--url", f"{base}/ocpi/versions", "--token", TOKEN]
        plain = await run_cli("verify", "--pull-id", "cut", *kafka)
        short = await run_cli(
            "verify", "--pull-id", "cut", *kafka, "--against-partner", *partner,
            "--output", "json",
        )  # fmt: skip
        resumed = await pull(
            base, bootstrap, prefix, pull_id="cut", resume=True, concurrency=8, fanout=4
        )
        outcome = await verify(
            settings(base, bootstrap, prefix, pull_id="cut"), against_partner=True
        )
    code, out, err = plain
    assert code == 5
    assert "plan NOT complete" in out
    assert err.splitlines() == [
        "ocpi-puller: incomplete: sbx/tokens: the pull is not complete (resume it with the same "
        "--pull-id), or check it with --against-partner"
    ]

    code, out, err = short
    assert code == 5
    report = json.loads(out)
    assert (report["complete"], report["error_kind"]) == (False, "incomplete")
    (cut,) = report["pulls"]
    assert 0 < cut["distinct_keys"] < 20_000
    assert cut["missing"] == 20_000 - cut["distinct_keys"]
    assert len(cut["missing_sample"]) == 10
    assert f"{cut['missing']} keys the partner lists are not in Kafka" in err

    assert resumed.exit_code == 0
    assert resumed.summaries[0].resumed
    assert outcome.exit_code == 0
    (whole,) = outcome.fields["pulls"]
    assert (whole["missing"], whole["distinct_keys"], whole["plan_completed"]) == (0, 20_000, True)


async def test_verify_of_an_unknown_pull_or_without_an_id_is_one_line(
    bootstrap: str, prefix: str
) -> None:
    kafka = ["--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
    unknown = await run_cli("verify", "--pull-id", "nope", *kafka)
    no_id = await run_cli("verify", *kafka, "--output", "json")
    no_kafka = await run_cli("verify", "--pull-id", "x", "--bootstrap-servers", "127.0.0.1:1")
    assert unknown[0] == 2
    assert unknown[2].splitlines() == [
        f"ocpi-puller: config: no plan of pull nope on {prefix}.checkpoints: check --pull-id and "
        "--topic-prefix"
    ]
    assert no_id[0] == 2
    assert json.loads(no_id[1])["error"] == "verify needs --pull-id (or OCPI_PULLER_PULL_ID)"
    assert no_kafka[0] == 6
    assert len(no_kafka[2].splitlines()) == 1


async def test_a_partners_file_pull_is_verified_module_by_module(
    bootstrap: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SBX_TOKEN", TOKEN)
    async with sandbox(sizes={"tokens": 300, "tariffs": 40}) as (base, _):
        partners = tmp_path / "partners.yaml"
        partners.write_text(
            "partners:\n"
            "  - name: sbx\n"
            f"    url: {base}/ocpi/versions\n"
            "    token_env: SBX_TOKEN\n"
            "    modules: [tokens, tariffs]\n",
            encoding="utf-8",
        )
        common = {
            "partners_file": partners,
            "bootstrap_servers": bootstrap,
            "topic_prefix": prefix,
            "pull_id": "many",
        }
        result = await run_pull(PullSettings(**common, progress_bar=False))
        outcome = await verify(PullSettings(**common), against_partner=True)
    assert result.exit_code == 0
    assert outcome.exit_code == 0, outcome.failure
    found = {(p["partner"], p["module"]): p for p in outcome.fields["pulls"]}
    assert sorted(found) == [("sbx", "tariffs"), ("sbx", "tokens")]
    assert (found[("sbx", "tokens")]["distinct_keys"], found[("sbx", "tariffs")]["missing"]) == (
        300,
        0,
    )
    assert found[("sbx", "tariffs")]["partner_keys"] == 40


async def test_a_signal_stops_verify_with_one_line_and_exit_130(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 2000}, max_limit=50, latency_ms=100) as (base, state):
        await pull(base, bootstrap, prefix, pull_id="long", concurrency=8, fanout=4)
        served = sum(state.stats.requests.values())
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "producer.cli", "verify", "--pull-id", "long",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--against-partner",
            "--url", f"{base}/ocpi/versions", "--token", TOKEN, "--concurrency", "1",
            "--output", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        while sum(state.stats.requests.values()) < served + 3:  # it is listing the partner
            await asyncio.sleep(0.05)
        command.send_signal(signal.SIGTERM)
        out, err = await command.communicate()
    assert command.returncode == 130
    assert err.decode().splitlines()[-1] == "ocpi-puller: interrupted: stopped by a signal"
    (line,) = out.decode().splitlines()
    assert json.loads(line) == {
        "command": "verify",
        "exit_code": 130,
        "error_kind": "interrupted",
        "error": "stopped by a signal",
    }
