"""A setting as the operator names it: its flag, its environment variables; and the settings'
errors and the unknown `OCPI_PULLER_*` variables, told by those names."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Mapping

from pydantic import ValidationError

from producer.config import ENV_PREFIX, Flag, PartnerOptions, PullSettings


def describe_validation_error(
    error: ValidationError, *, flags: bool = False, given: Collection[str] = ()
) -> str:
    """One line for every pydantic error, joined: `where: message`. With `flags`, a setting is
    named the way the operator set it: its flag when `given` on the command line, else the
    environment variable that is set (`JOB_COMPLETION_INDEX`, not the alias it stands for)."""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        field = _field_named(location) if flags else None
        if field is not None:
            location = _where_set(field, given)
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _field_named(location: str) -> str | None:
    """The setting an error location names: a field, or one of its environment variables."""
    if location in PullSettings.model_fields:
        return location
    return next((f for f in PullSettings.model_fields if location in env_names(f)), None)


def _where_set(field: str, given: Collection[str]) -> str:
    if field in given:
        return flag_name(field)
    names = env_names(field)
    chosen = [name for name in names if name in os.environ] or [flag_name(field), *names]
    return " / ".join(chosen)


def flag_of(field: str) -> Flag | None:
    """The flag of a setting (`None`: read from the environment only)."""
    info = PullSettings.model_fields[field]
    return next((item for item in info.metadata if isinstance(item, Flag)), None)


def flagged_fields() -> list[str]:
    """Every setting with a flag on `pull`: the run's, then the per-partner options."""
    run_first = sorted(PullSettings.model_fields, key=lambda f: f in PartnerOptions.model_fields)
    return [field for field in run_first if flag_of(field) is not None]


def flag_name(field: str) -> str:
    """`date_from` → `--date-from`: the flag of a setting."""
    flag = flag_of(field)
    return (flag and flag.name) or "--" + field.replace("_", "-")


def env_names(field: str) -> list[str]:
    """The environment variables a setting is read from (its aliases, else the prefixed name)."""
    alias = PullSettings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(c) for c in choices]
    return [ENV_PREFIX + field.upper()]


def known_env_names() -> set[str]:
    """Every environment variable the settings read."""
    return {name.upper() for field in PullSettings.model_fields for name in env_names(field)}


def unknown_env_warnings(environ: Mapping[str, str]) -> list[str]:
    """One line for each `OCPI_PULLER_*` variable no setting reads (a typo, or a setting gone)."""
    known = known_env_names()
    # Compared without the prefix they share, or every name would be close to every other.
    settings = sorted(
        name.removeprefix(ENV_PREFIX) for name in known if name.startswith(ENV_PREFIX)
    )
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), settings, n=1)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        lines.append(f"{name} is not a setting of the puller and is ignored{hint}")
    return lines
