"""From parsed flags to the one settings object: flags override the environment."""

from __future__ import annotations

import argparse
import logging
import os

from producer.config import PullSettings, unknown_env_warnings
from producer.errors import ConfigError

log = logging.getLogger(__name__)


def settings_from_args(args: argparse.Namespace) -> PullSettings:
    """Flags given on the command line override the environment; the rest comes from it. An
    `OCPI_PULLER_*` variable no setting reads is a warning: a typo must not pass unnoticed."""
    from pydantic import ValidationError

    from producer.config import describe_validation_error

    for line in unknown_env_warnings(os.environ):
        log.warning("%s", line)
    given = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name not in ("run", "command")
    }
    try:
        return PullSettings(**given)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, flags=True, given=given)) from None
