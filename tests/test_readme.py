"""README's reference tables stay in step with the code: every `pull` flag, summary field,
exit code, command, message header and progress event the code has is named there."""

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


@pytest.mark.parametrize(
    "flag",
    sorted(
        option
        for action in _subcommands()["pull"]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ),
)
def test_every_pull_flag_is_in_the_flag_table(flag: str) -> None:
    assert _named(flag), f"README's flag table does not name {flag}"


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
