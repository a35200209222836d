"""The flags of `ocpi-puller pull` (and of the commands that take the same), generated from the one
settings object: each `PullSettings` field with a `Flag` is a flag, its description the help, its
default and environment variables named at the end of it.

A flag given on the command line overrides its environment variable; both are validated by
`PullSettings`, so a bad value names the flag and the variable in one line (exit 2).
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from producer.config import FLAG_GROUPS, Flag, PullSettings
from producer.setting_names import env_names, flag_name, flag_of, flagged_fields

EXIT_CODES = """exit codes:
  0    every pull complete
  1    an internal error (a bug: please report it)
  2    bad usage or configuration (flags, environment, partners file)
  3    the partner refused us or the endpoint does not exist (token, URL, version)
  4    the partner was unreachable or kept failing (TLS included): try again later
  5    a pull is incomplete (shortfall, unusable pagination, refused link): resume or re-run;
       or it reported a warning named by --fail-on
  6    Kafka unavailable, refused, or this pull was fenced by a newer process
  130  interrupted (SIGINT/SIGTERM): resume with the same --pull-id"""

KAFKA_SECURITY_FIELDS = (
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
)


def _shown_default(info: FieldInfo) -> str | None:
    default = info.default
    if default is PydanticUndefined or default is None or default is False:
        return None
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _value_type(info: FieldInfo) -> Any:
    """The field's type without `None`."""
    kind = info.annotation
    if get_origin(kind) in (Union, types.UnionType):
        rest = [arg for arg in get_args(kind) if arg is not type(None)]
        kind = rest[0] if len(rest) == 1 else kind
    return kind


def _reading(info: FieldInfo, flag: Flag) -> dict[str, Any]:
    """How argparse reads the flag: by the `Flag`'s word, else by the field's type."""
    kind = _value_type(info)
    if flag.yes_no:
        return {"action": argparse.BooleanOptionalAction}
    if kind is bool:
        return {"action": "store_true"}
    options: dict[str, Any] = {}
    if flag.parse is not None:
        options["type"] = PARSERS[flag.parse]
    elif get_origin(kind) is Literal:
        options["choices"] = get_args(kind)
    elif kind in (int, float):
        options["type"] = kind
    if flag.metavar is not None:
        options["metavar"] = flag.metavar
    if flag.bare is not None:
        options.update(nargs="?", const=flag.bare)
    return options


def add_flag(
    group: argparse._ArgumentGroup,
    name: str,
    text: str | None = None,
    *,
    field: str | None = None,
    default_text: str | None = None,
    aliases: tuple[str, ...] = (),
    **options: Any,
) -> None:
    """Add the flag of a setting (and other names for it) whose help ends with its default and
    its environment variable; `text` and `options` where another command means it otherwise."""
    field = field or name.removeprefix("--").replace("-", "_")
    info = PullSettings.model_fields[field]
    flag = flag_of(field)
    shown = default_text or (flag and flag.shown_default) or _shown_default(info)
    envs = " or ".join(env_names(field))
    tail = f"default {shown}; env {envs}" if shown else f"env {envs}"
    options.setdefault("default", None)  # unset flags leave the environment its say
    text = text or info.description
    group.add_argument(name, *aliases, dest=field, help=f"{text} ({tail})", **options)


def add_setting_flag(group: argparse._ArgumentGroup, field: str) -> None:
    """The flag of a setting exactly as its `Flag` describes it."""
    flag = flag_of(field)
    assert flag is not None, f"{field} has no flag"
    info = PullSettings.model_fields[field]
    add_flag(group, flag_name(field), field=field, aliases=flag.aliases, **_reading(info, flag))


def add_setting_flags(p: argparse.ArgumentParser, groups: tuple[str, ...] = FLAG_GROUPS) -> None:
    """The flags of these groups, each group as one help section."""
    for title in groups:
        group = p.add_argument_group(title)
        for field in flagged_fields():
            flag = flag_of(field)
            if flag is not None and flag.group == title:
                add_setting_flag(group, field)


def add_partner_flags(p: argparse.ArgumentParser) -> None:
    """Who to pull from and as whom."""
    add_setting_flags(p, ("partner",))


def add_kafka_security_flags(g: argparse._ArgumentGroup) -> None:
    """How to log in to Kafka: the same flags for `pull` and every command that reads Kafka."""
    for field in KAFKA_SECURITY_FIELDS:
        add_setting_flag(g, field)


def add_pull_flags(p: argparse.ArgumentParser) -> None:
    """Every flag of `pull`, in its groups."""
    add_setting_flags(p)


LOG_LEVELS: tuple[str, ...] = get_args(PullSettings.model_fields["log_level"].annotation)


def concurrency_value(text: str) -> str | int:
    """`auto` or a whole number (its range is the settings' to check)."""
    word = text.strip().lower()
    if word == "auto":
        return word
    try:
        return int(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither auto nor a number") from None


def log_level(text: str) -> str:
    """A log level in any case."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


PARSERS: dict[str, Callable[[str], Any]] = {"auto|N": concurrency_value, "log level": log_level}
