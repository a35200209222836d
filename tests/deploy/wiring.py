"""What the puller makes of a deployment's arguments and environment, as its CLI makes it.

Shared by the chart, compose and Dockerfile tests: each hands over what its tool resolved (Helm's
manifests, Compose's model, the image's ENV) and gets the puller's own settings back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producer.cli import build_parser, settings_from_args
from producer.config import PullSettings
from producer.setting_names import unknown_env_warnings

ROOT = Path(__file__).resolve().parents[2]


def check_env_names(env: dict[str, Any], where: str) -> None:
    """Fail when `where` sets an OCPI_PULLER_* variable the puller does not read (and would warn
    about)."""
    unknown = unknown_env_warnings(env)
    assert not unknown, f"{where} sets variables the puller does not read: {unknown}"


def settings_of(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> PullSettings:
    """The settings `ocpi-puller <argv>` builds in this environment, as the CLI builds them."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(argv)
    assert args.command == "pull"
    return settings_from_args(args)
