"""From parsed flags to the one settings object: flags override the environment."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import yaml

from producer.config import PullSettings
from producer.errors import ConfigError
from producer.observe.secrets import mask_in_logs
from producer.setting_names import unknown_env_warnings

log = logging.getLogger(__name__)


def settings_from_args(args: argparse.Namespace) -> PullSettings:
    """Flags given on the command line override the environment; the rest comes from it. An
    `OCPI_PULLER_*` variable no setting reads is a warning: a typo must not pass unnoticed."""
    from pydantic import ValidationError

    from producer.setting_names import describe_validation_error

    given = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name not in ("run", "command")
    }
    try:
        settings = PullSettings(**given)
    except ValidationError as error:
        _warn_unknown_variables(given.get("partners_file"))
        raise ConfigError(describe_validation_error(error, flags=True, given=given)) from None
    _warn_unknown_variables(settings.partners_file)
    for secret in (settings.token, settings.kafka_sasl_password):
        if secret is not None:
            mask_in_logs(secret.get_secret_value())
            mask_in_logs(secret.get_secret_value().strip())  # the token as sent
    return settings


def _warn_unknown_variables(partners_file: Path | None) -> None:
    tokens = _token_variables(None if partners_file is None else Path(partners_file))
    for line in unknown_env_warnings({k: v for k, v in os.environ.items() if k not in tokens}):
        log.warning("%s", line)


def _token_variables(path: Path | None) -> set[str]:
    """The variables a partners file names for its tokens (`token_env`): read, not unknown.
    (A file that does not read is left to the partners loader to refuse.)"""
    if path is None:
        return set()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()
    entries = document.get("partners") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        return set()
    return {
        entry["token_env"]
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("token_env"), str)
    }
