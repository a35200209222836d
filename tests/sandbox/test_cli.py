"""`ocpi-puller sandbox` flags: bad input exits 2 with one line naming the flag, no traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import pytest

from producer.cli import build_parser, main
from sandbox.cli import config_from_args
from sandbox.config import PY_OCPI, SandboxConfig
from tests.sandbox.paging import raw_get
from tests.support import auth_header, get


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--port", "70000", "not a port number"),
        ("--port", "-1", "not a port number"),
        ("--port", "http", "not a whole number"),
        ("--tokens", "-5", "negative"),
        ("--max-limit", "0", "not 1 or more"),
        ("--default-limit", "0", "not 1 or more"),
        ("--spacing-ms", "0", "not 1 or more"),
        ("--seed", "1.5", "not a whole number"),
        ("--latency-ms", "nan", "not a finite number"),
        ("--latency-ms", "-3", "negative"),
        ("--stall-seconds", "inf", "not a finite number"),
        ("--rate-limit", "0", "not above 0"),
        ("--error-rate", "1.5", "not a probability"),
        ("--mutation-rate", "-0.1", "negative"),
        ("--retry-after-seconds", "soon", "not a whole number"),
        ("--mutations-per-s", "inf", "not a finite number"),
        ("--capacity-workers", "0", "not 1 or more"),
        ("--capacity-queue", "-1", "negative"),
        ("--redirect-slash", "305", "invalid choice"),
        ("--ocpi-versions", "2.2.1,3.0", "3.0 not one of 2.1.1, 2.2.1, 2.3.0"),
        ("--dialect", "loud", "loud not one of"),
        ("--link-defects", "py-ocpi,tiny", "tiny not one of"),
        ("--mutation-kinds", "update,explode", "explode not one of"),
        ("--order", "random", "invalid choice"),
    ],
)
def test_bad_numbers_name_the_flag_on_one_line(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", f"{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("ocpi-puller: config: ")  # the puller's one-line form (issue 25)
    assert flag in err
    assert says in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--capacity-queue", "3"], "a capacity queue needs capacity workers"),
        (["--mutation-kinds", ""], "mutation kinds must be one or more"),
        (["--ocpi-versions", ","], "OCPI versions must be some of"),
    ],
)
def test_flags_that_cannot_work_together_are_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sandbox", "--port", "0", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert says in err


def test_every_new_flag_reaches_the_config() -> None:
    args = build_parser().parse_args(
        [
            "sandbox",
            "--mutations-per-s=2.5",
            "--mutation-kinds=update,touch",
            "--order=created",
            "--link-defects=py-ocpi,no-rel",
            "--foreign-origin=http://elsewhere:1",
            "--ignore-offset=without-link",
            "--redirect-slash=308",
            "--redirect-cross-origin",
            "--ocpi-versions=2.3.0,2.2.1",
            "--require-headers",
            "--dialect=nulls,space-timestamps",
            "--capacity-workers=3",
            "--capacity-queue=0",
        ]
    )
    config = config_from_args(args)
    assert config.mutations_per_s == 2.5
    assert config.mutation_kinds == ("update", "touch")
    assert config.order == "created"
    assert config.link_defects == (*PY_OCPI, "no-rel")
    assert config.foreign_origin == "http://elsewhere:1"
    assert config.ignore_offset == "without-link"
    assert (config.redirect_status, config.redirect_cross_origin) == (308, True)
    assert config.ocpi_versions == ("2.3.0", "2.2.1")
    assert config.require_headers
    assert config.dialects == ("space-timestamps", "nulls")
    assert (config.capacity_workers, config.capacity_queue) == (3, 0)


def test_the_defaults_are_todays_spec_perfect_partner() -> None:
    config = config_from_args(build_parser().parse_args(["sandbox"]))
    assert config == SandboxConfig()


def test_port_in_use_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["sandbox", "--port", str(port), "--tokens", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_the_command_itself_rejects_port_70000_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "producer.cli", "sandbox", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "ocpi-puller: config: argument --port: 70000 is not a port number (0-65535) "
        "(see ocpi-puller sandbox --help)"
    ]


async def test_the_command_serves_what_its_flags_say() -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "producer.cli", "sandbox", "--port", "0", "--tokens", "30"),
        *("--ocpi-versions", "2.3.0", "--redirect-slash", "308", "--link-defects", "no-rel"),
        *("--dialect", "lowercase", "--capacity-workers", "2", "--order", "created"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = (await process.stdout.readline()).decode()
        base = line.split(" at ", 1)[1].split("/ocpi/versions", 1)[0]
        redirected, _, headers = await raw_get(f"{base}/ocpi/versions", auth_header())
        _, versions, _ = await get(f"{base}/ocpi/versions/", auth_header())
        _, page, page_headers = await get(f"{base}/ocpi/emsp/2.3.0/tokens/?limit=10", auth_header())
        _, stats, _ = await get(f"{base}/_sandbox/stats")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert (redirected, headers["Location"]) == (308, f"{base}/ocpi/versions/")
    assert [v["version"] for v in versions["data"]] == ["2.3.0"]
    assert page["data"][0]["country_code"] == "nl"
    assert page_headers["Link"] == f"<{base}/ocpi/emsp/2.3.0/tokens/?offset=10&limit=10>"
    assert stats["capacity"]["workers"] == 2
