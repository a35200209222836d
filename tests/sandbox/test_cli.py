"""`ocpi-puller sandbox` flags: bad input exits 2 with one line naming the flag, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from producer.cli import main


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
    ],
)
def test_bad_numbers_name_the_flag_on_one_line(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sandbox", f"{flag}={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert flag in err
    assert says in err


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
        "ocpi-puller sandbox: error: argument --port: 70000 is not a port number (0-65535) "
        "(see --help)"
    ]
