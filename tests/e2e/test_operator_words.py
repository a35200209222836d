"""Errors in the operator's words (issue 25): a short token never mangles a URL, a connection
that fails says where and why, an environment error names the variable set, the summary says
`duration`, and every log line names a pull as `pull=<id>`. Real processes, real sockets."""

from __future__ import annotations

import re

from sandbox.broker import free_port
from tests.support import TOKEN, run_cli, sandbox

INTERNALS = ("ClientConnectorError", "AddressFamily", "KafkaConnectionError", "REDACTED")


async def test_a_refused_partner_with_a_one_character_token_reads_plainly() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/ocpi/versions"
    code, _, err = await run_cli("discover", "--url", url, "--token", "t", "--max-attempts", "1")
    assert code == 4
    (line,) = err.splitlines()
    assert line == (
        f"ocpi-puller: partner_unavailable: partner kept failing at {url}: "
        f"cannot connect to 127.0.0.1:{port}: connection refused (1 attempt)"
    )


async def test_a_partner_name_that_does_not_resolve_says_so() -> None:
    url = "http://partner.invalid/ocpi/versions"
    code, _, err = await run_cli("discover", "--url", url, "--token", "t", "--max-attempts", "1")
    assert code == 4
    assert err.splitlines()[-1].endswith(
        "cannot connect to partner.invalid:80: name not known (1 attempt)"
    )


async def test_a_refused_broker_says_where_and_why() -> None:
    port = free_port()
    code, _, err = await run_cli(
        "pull", "--url", "http://127.0.0.1:1/ocpi/versions", "--module", "tokens",
        "--token", "t", "--bootstrap-servers", f"127.0.0.1:{port}",
        "--kafka-connect-timeout-s", "1", "--output", "json",
    )  # fmt: skip
    assert code == 6
    assert err.splitlines()[-1].endswith(
        f"(connect: cannot connect to 127.0.0.1:{port}: connection refused)"
    )
    assert not any(word in err for word in INTERNALS), err
    code, _, err = await run_cli("status", "--bootstrap-servers", f"127.0.0.1:{port}")
    assert code == 6
    assert err.strip().endswith(f"cannot connect to 127.0.0.1:{port}: connection refused")


async def test_an_environment_error_names_the_variable_that_was_set() -> None:
    code, _, err = await run_cli(
        "pull", "--url", "http://x.example/ocpi/versions", "--module", "tokens",
        env={"JOB_COMPLETION_INDEX": "abc"},
    )  # fmt: skip
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith("ocpi-puller: config: JOB_COMPLETION_INDEX: ")
    assert "OCPI_PULLER_SHARD_INDEX" not in line
    # Given on the command line, the flag is named.
    code, _, err = await run_cli(
        "pull", "--url", "http://x.example/ocpi/versions", "--module", "tokens", "--limit", "-3"
    )
    assert err.strip() == "ocpi-puller: config: --limit: Input should be greater than 0"


async def test_the_summary_says_duration_and_log_lines_name_the_pull_one_way(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 1_200}, max_limit=100) as (base, _):
        code, out, err = await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--pull-id", "words-1",
            "--incremental", "--output", "text", "--no-progress-bar",
            env={"OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
    assert code == 0, err
    assert re.search(r"^duration: \d+\.\d s$", out, re.MULTILINE), out
    assert not re.search(r"^s: ", out, re.MULTILINE)
    named = [line for line in err.splitlines() if "pull=" in line]
    kinds = {line.split()[3] for line in named}  # after the date, time and level
    assert {"pull", "progress", "warning"} <= kinds, err  # started, progress, a warning
    assert all(re.search(r"\bpull=words-1 ", line) for line in named), err
    assert "pull=sbx" not in err
