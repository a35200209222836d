"""From parsed flags to the one settings object: flags override the environment."""

from __future__ import annotations

import argparse

from producer.config import PullSettings
from producer.errors import ConfigError


def settings_from_args(args: argparse.Namespace) -> PullSettings:
    """Flags given on the command line override the environment; the rest comes from it."""
    from pydantic import ValidationError

    from producer.config import describe_validation_error

    given = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name not in ("run", "command", "log_level")
    }
    try:
        return PullSettings(**given)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, flags=True, given=given)) from None
