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

ROOT = Path(__file__).resolve().parents[2]


def settings_env_names() -> set[str]:
    """Every environment variable PullSettings reads."""
    names: set[str] = set()
    for name, info in PullSettings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
        names.update(str(c).upper() for c in choices or [f"OCPI_PULLER_{name}"])
    return names


def check_env_names(env: dict[str, Any], where: str) -> None:
    """Fail when `where` sets an OCPI_PULLER_* variable the puller does not read."""
    unknown = {n for n in env if n.startswith("OCPI_PULLER_")} - settings_env_names()
    assert not unknown, f"{where} sets {unknown}, which the puller does not read"


def settings_of(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> PullSettings:
    """The settings `ocpi-puller <argv>` builds in this environment, as the CLI builds them."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(argv)
    assert args.command == "pull"
    return settings_from_args(args)
