"""README's reference tables stay in step with the code: every `pull` flag (and its environment
variable), summary field, exit code, command, message header and progress event the code has is
named there. The flags are read where the CLI is generated from: the settings model."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

import pytest

from producer import errors
from producer.cli import build_parser
from producer.pull.summary import PullSummary
from producer.setting_names import env_names, flag_name, flag_of, flagged_fields
from schemas import events
from schemas import headers as message_headers

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _named(name: str) -> bool:
    """`--kafka-sasl-username` is named by itself or by a `--kafka-sasl-*` row."""
    if f"`{name}`" in README or f"{name}`" in README:
        return True
    parts = name.split("-")
    return any(f"{'-'.join(parts[:i])}-*`" in README for i in range(3, len(parts)))


def test_readme_is_short() -> None:
    assert len(README.encode()) <= 15 * 1024


def _flags_of(field: str) -> list[str]:
    """The names of a setting's flag: its own and its aliases."""
    flag = flag_of(field)
    assert flag is not None
    return [flag_name(field), *flag.aliases]


def _readme_variable(flag: str) -> str:
    """README's rule: `--rate-limit` is read from `OCPI_PULLER_RATE_LIMIT`."""
    return "OCPI_PULLER_" + flag.removeprefix("--").replace("-", "_").upper()


def test_the_pull_command_offers_exactly_the_settings_flags() -> None:
    offered = {
        option
        for action in _subcommands()["pull"]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    from_settings = {name for field in flagged_fields() for name in _flags_of(field)}
    assert offered == from_settings | {"--no-resume"}  # argparse's other half of --resume


@pytest.mark.parametrize("field", flagged_fields())
def test_every_pull_flag_is_in_the_flag_table(field: str) -> None:
    for flag in _flags_of(field):
        assert _named(flag), f"README's flag table does not name {flag}"


@pytest.mark.parametrize("field", flagged_fields())
def test_every_pull_flag_reads_the_variable_readme_names(field: str) -> None:
    variables = env_names(field)
    by_rule = {_readme_variable(flag) for flag in _flags_of(field)}
    assert by_rule <= set(variables), f"README's rule names {by_rule}; the code reads {variables}"
    for name in set(variables) - by_rule:
        assert f"`{name}`" in README, f"README does not name {name}, which sets {field}"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(PullSummary)])
def test_every_summary_field_is_listed(field: str) -> None:
    assert f"`{field}`" in README


def test_every_exit_code_is_in_the_table() -> None:
    codes = {
        error.exit_code
        for error in vars(errors).values()
        if isinstance(error, type) and issubclass(error, errors.PullError)
    }
    for code in {0, *codes}:
        assert re.search(rf"^\| {code} \|", README, re.M), f"exit code {code}"


def test_every_command_is_in_the_table() -> None:
    for command in _subcommands():
        assert re.search(rf"^\| `{command}[` ]", README, re.M), command


def test_every_header_and_event_is_named() -> None:
    for header in message_headers.ALL:
        assert f"`{header}`" in README
    for model in vars(events).values():
        if isinstance(model, type) and "event" in getattr(model, "model_fields", {}):
            (name,) = typing.get_args(model.model_fields["event"].annotation)
            assert f"`{name}`" in README, name


def test_the_operators_commands_of_issue_25_are_named() -> None:
    for name in ("`broker", "`redrive", "`--fail-on`", "status --output"):
        assert name in README, name
