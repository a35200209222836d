"""The command line as operators meet it (issue 14): one line per failure and the documented exit
code, never a traceback; under --output json exactly one JSON line on stdout whatever ends the
process; help that names every default and environment variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from producer import cli
from producer.cli import build_parser

CLOSED_PORT = "127.0.0.1:9"  # nothing listens: a config error must come before any connection


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPI_PULLER_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def pull(*args: str, **kw: Any) -> Any:
    base = ("pull", "--url", "http://127.0.0.1:9/ocpi/versions", "--token", "t0ken",
            "--module", "tokens", "--bootstrap-servers", CLOSED_PORT)  # fmt: skip
    return run(*base, *args, **kw)


def assert_one_line(result: Any, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "t0ken" not in result.stderr + result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ocpi-puller ")


def test_pull_help_ends_with_the_exit_codes() -> None:
    result = run("pull", "--help")
    assert result.returncode == 0
    assert result.stdout.rstrip().splitlines()[-1].startswith("  130")
    assert "(a bug: please report it)" in result.stdout


def test_every_pull_flag_says_its_environment_variable() -> None:
    parser = build_parser()
    pull_parser = parser._subparsers._group_actions[0].choices["pull"]  # type: ignore[union-attr]
    for action in pull_parser._actions:
        if action.dest in ("help",):
            continue
        assert action.help, action.option_strings
        assert "env " in action.help, action.option_strings


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (("--date-from", "2999-01-01T00:00:00Z"), {}, ("--date-from", "not in the past")),
        # Named as the operator set it: the flag, or the variable (issue 25).
        (("--date-from", "yesterday"), {}, ("config: --date-from: ",)),
        ((), {"OCPI_PULLER_DATE_FROM": "soon"}, ("OCPI_PULLER_DATE_FROM",)),
        (("--concurrency", "many"), {}, ("--concurrency",)),
        (("--shard-count", "2"), {}, ("a sharded pull needs one --pull-id",)),
        (("--resume",), {}, ("--resume needs the --pull-id",)),
        (("--log-level", "verbose"), {}, ("--log-level",)),
        ((), {"OCPI_PULLER_LOG_LEVEL": "verbose"}, ("OCPI_PULLER_LOG_LEVEL",)),
        (("--no-such-flag",), {}, ("unrecognized arguments: --no-such-flag",)),
        # Operators' mistakes that once ended as "internal" (exit 1) or as a Kafka outage.
        (("--request-timeout-s", "inf"), {}, ("--request-timeout-s", "finite")),
        ((), {"OCPI_PULLER_KAFKA_DEADLINE_S": "nan"}, ("OCPI_PULLER_KAFKA_DEADLINE_S",)),
        (("--kafka-request-timeout-s", "3000000"), {}, ("--kafka-request-timeout-s",)),
        (("--incremental-overlap-s", "999999999999"), {}, ("--incremental-overlap-s",)),
        (("--url", "http://127.0.0.1:99999/ocpi/versions"), {}, ("--url", "Port out of range")),
        (("--url", "http:///ocpi/versions"), {}, ("--url", "no host")),
        (("--partner", "acme/evil"), {}, ("--partner", "1-63 letters")),
        (("--bootstrap-servers", "a:b:c"), {}, ("--bootstrap-servers", "not host:port")),
        (("--bootstrap-servers", "127.0.0.1:99999"), {}, ("not host:port",)),
        (("--bootstrap-servers", ""), {}, ("--bootstrap-servers", "no server")),
        (("--bootstrap-servers", "PLAINTEXT://k:9092"), {}, ("without a scheme",)),
        (
            ("--kafka-security-protocol", "SASL_PLAINTEXT", "--kafka-sasl-password", "pw"),
            {},
            ("SASL_PLAINTEXT needs --kafka-sasl-username",),
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: tuple[str, ...], env: dict[str, str], fragments: tuple[str, ...]
) -> None:
    result = pull(*args, env=env)
    assert_one_line(result, 2, "config", *fragments)
    assert result.stdout == ""


@pytest.mark.parametrize("json_flag", [("--output", "json"), ("--output=json",)])
def test_under_json_output_a_config_error_is_one_json_line(json_flag: tuple[str, ...]) -> None:
    result = pull(*json_flag, "--shard-count", "2")
    assert result.returncode == 2
    (line,) = result.stdout.strip().splitlines()
    summary = json.loads(line)
    assert summary["exit_code"] == 2
    assert summary["error_kind"] == "config"
    assert "--pull-id" in summary["error"]
    assert summary["complete"] is False


def test_the_environment_can_ask_for_json_too() -> None:
    result = pull("--concurrency", "0", env={"OCPI_PULLER_OUTPUT": "json"})
    assert result.returncode == 2
    assert json.loads(result.stdout)["error_kind"] == "config"


def test_an_unknown_puller_variable_is_a_warning_not_an_error() -> None:
    result = pull("--shard-count", "2", env={"OCPI_PULLER_CONCURENCY": "4"})
    assert result.returncode == 2  # the warning is not the error: that is the next problem
    warning, error = result.stderr.strip().splitlines()
    assert "WARNING OCPI_PULLER_CONCURENCY is not a setting of the puller" in warning
    assert "did you mean OCPI_PULLER_CONCURRENCY?" in warning
    assert "--pull-id" in error


def test_a_token_variable_a_partners_file_names_is_not_unknown(tmp_path: Path) -> None:
    partners = tmp_path / "partners.yaml"
    partners.write_text(
        "partners:\n  - name: acme\n    url: http://127.0.0.1:9/ocpi/versions\n"
        "    token_env: OCPI_PULLER_ACME_TOKEN\n    modules: [tokens]\n"
    )
    env = {"OCPI_PULLER_ACME_TOKEN": "secret", "OCPI_PULLER_XYZZY": "1"}
    result = pull("--partners", str(partners), "--shard-count", "2", env=env)
    assert "OCPI_PULLER_XYZZY is not a setting" in result.stderr
    assert "OCPI_PULLER_ACME_TOKEN" not in result.stderr


def test_log_levels_are_accepted_in_any_case() -> None:
    result = pull("--log-level", "debug", "--shard-count", "2")
    assert_one_line(result, 2, "--pull-id")  # got past the log level to the next problem


def test_sandbox_port_out_of_range_is_one_line() -> None:
    assert_one_line(run("sandbox", "--port", "70000"), 2, "--port")


def test_an_internal_error_is_one_line_exit_1_and_a_plea(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: Any) -> int:
        raise RuntimeError("the unexpected")

    monkeypatch.setattr(cli, "_run_pull", broken)
    code = cli.main(["pull", "--output", "json", "--url", "http://p/ocpi/versions"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().endswith("(a bug: please report it)")
    assert "Traceback" not in err
    assert json.loads(out)["error_kind"] == "internal"


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("--tokn", "t0ken"), "unrecognized arguments: --tokn (and 1 value, not shown)"),
        (("t0ken",), "unrecognized arguments: 1 value, not shown"),
        (("--tok=t0ken",), "ambiguous option: --tok=… could match --token, --token-encoding"),
        (("--kafka-sasl-pasword=t0ken",), "unrecognized arguments: --kafka-sasl-pasword=…"),
    ],
)
def test_a_usage_error_never_shows_the_values_typed(args: tuple[str, ...], shown: str) -> None:
    # A mistyped flag, or a token given without its flag: the secret is not put on screen
    # (`assert_one_line` checks that t0ken appears nowhere).
    assert_one_line(pull(*args), 2, shown)


def test_a_url_with_user_info_is_refused_without_showing_it() -> None:
    result = pull("--url", "http://admin:s3cr3t-pw@127.0.0.1:9/ocpi/versions")
    assert_one_line(result, 2, "--url", "user info", "--token")
    assert "s3cr3t-pw" not in result.stderr + result.stdout


def test_a_token_with_a_line_break_is_refused_without_showing_it() -> None:
    result = pull("--token", "t0ken\nX-Injected: 1")
    assert_one_line(result, 2, "--token", "control character")
    assert "Injected" not in result.stderr


def test_a_line_break_around_the_token_is_not_part_of_it() -> None:
    # (`echo` into a Kubernetes Secret leaves one.) Past the token to the next problem: Kafka.
    result = pull("--token", "t0ken\n", "--kafka-connect-timeout-s", "1")
    assert result.returncode == 6, result.stderr
    assert "control character" not in result.stderr


def test_status_since_beyond_any_clock_is_a_usage_error() -> None:
    result = run("status", "--since", "99999999999d", "--bootstrap-servers", CLOSED_PORT)
    assert_one_line(result, 2, "--since", "more than 100 years")


def test_demo_checks_its_concurrency_before_starting_anything() -> None:
    assert_one_line(run("demo", "--concurrency", "0"), 2, "--concurrency")


def test_broker_data_dir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    result = run("broker", "--data-dir", str(afile), "--port", "1")  # (checked before the port)
    assert_one_line(result, 2, "--data-dir", "is a file")
