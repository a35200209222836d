"""`make image-smoke`: build the image and run it for real, with no image registry.

Opt-in, never part of `make test`. Needs root, Debian's docker.io (the engine, dockerd, and its
client /usr/bin/docker) and mmdebstrap. It:

1. uses the running Docker engine, or starts dockerd itself (no bridge, no iptables rules) and
   stops it at the end;
2. makes a local stand-in for python:3.11-slim-bookworm with mmdebstrap (Debian bookworm, its
   Python 3.11) and `docker import`, once: no registry is reachable to pull the real one. The
   base trusts what this machine trusts (its CA bundle is copied in), so that pip in the build
   reaches PyPI the way the host's pip does;
3. builds the Dockerfile on it (BuildKit, the host network for pip) and checks the image's user,
   entrypoint and that useradd did not warn;
4. runs the sandbox container (compose's command, fewer tokens, its own port) and waits on
   compose's own health check, run inside it; runs the puller container with compose's
   environment, its three addresses pointed at the host: the embedded broker (noida-db), the
   sandbox, and an OTLP/gRPC receiver in this process. Both containers run on the host network
   with compose's restrictions (read-only root, /tmp tmpfs, all capabilities dropped, no new
   privileges);
5. asserts exit 0, a complete JSON summary, the messages in Kafka, the spans received; prints
   the image size.

    python -m tests.deploy.image_smoke [--rebuild-base] [--tokens N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from sandbox.broker import free_port, start_broker
from tests.deploy.compose_model import services
from tests.deploy.otlp_grpc import OtlpGrpcReceiver, spans_of
from tests.deploy.wiring import ROOT

# Debian's docker.io: its client is named by path, as another `docker` (a newer client without
# the buildx plugin, say) may come first on PATH.
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
SUITE = "bookworm"  # as python:3.11-slim-bookworm
MIRROR = "http://deb.debian.org/debian"
BASE = f"ocpi-puller-smoke-base:{SUITE}"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"ocpi-puller:{VERSION}-smoke"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class SmokeFailure(Exception):
    """The image did not build or run as it should; the message says what."""


def say(message: str) -> None:
    print(f"image-smoke: {message}", flush=True)


def missing_prerequisites() -> list[str]:
    """What this machine lacks for the smoke run, one line each."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("needs root (dockerd, mmdebstrap and docker import run as root)")
    if not (Path(DOCKERD).exists() and Path(DOCKER).exists()):
        problems.append(
            "needs Debian's docker.io (dockerd and /usr/bin/docker): apt-get install docker.io"
        )
    if shutil.which("mmdebstrap") is None:
        problems.append("needs mmdebstrap to make a local base image: apt-get install mmdebstrap")
    if not HOST_CA_BUNDLE.exists():
        problems.append(f"needs the host's CA bundle at {HOST_CA_BUNDLE} (ca-certificates)")
    return problems


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Debian's docker client; a failure raises SmokeFailure with its stderr."""
    done = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise SmokeFailure(f"docker {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def docker_engine(workdir: Path) -> Iterator[None]:
    """The running engine, or one started here (and stopped on the way out)."""
    if docker("info", check=False, timeout=30).returncode == 0:
        say(f"docker engine {server_version()} (already running)")
        yield
        return
    log = workdir / "dockerd.log"
    with log.open("wb") as out:
        # No default bridge and no iptables rules: every container here uses the host network.
        engine = subprocess.Popen(
            [DOCKERD, "--bridge=none", "--iptables=false"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while docker("info", check=False, timeout=30).returncode != 0:
            if engine.poll() is not None or time.monotonic() > deadline:
                raise SmokeFailure(f"dockerd did not start:\n{tail(log)}")
            time.sleep(0.5)
        say(f"docker engine {server_version()} (started here, pid {engine.pid})")
        yield
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()


def server_version() -> str:
    return docker("version", "--format", "{{.Server.Version}}").stdout.strip()


def make_base_image(workdir: Path, rebuild: bool) -> None:
    """A local stand-in for python:3.11-slim-bookworm: Debian bookworm minbase and its Python."""
    if not rebuild and docker("image", "inspect", BASE, check=False).returncode == 0:
        say(f"base {BASE} (made earlier; --rebuild-base makes it again)")
        return
    started = time.monotonic()
    tarball = workdir / "base.tar"
    log = workdir / "mmdebstrap.log"
    command = [
        "mmdebstrap",
        "--variant=minbase",
        "--include=python3,python3-venv,python-is-python3,ca-certificates",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        f"--customize-hook=copy-in {HOST_CA_BUNDLE} {HOST_CA_BUNDLE.parent}",
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/*',
        SUITE,
        str(tarball),
        MIRROR,
    ]
    with log.open("wb") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    if done.returncode != 0:
        raise SmokeFailure(f"mmdebstrap failed ({done.returncode}):\n{tail(log)}")
    docker(
        "import",
        "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change", "ENV LANG=C.UTF-8",
        "--change", 'CMD ["python3"]',
        str(tarball),
        BASE,
    )  # fmt: skip
    tarball.unlink()
    python = docker("run", "--rm", "--network=none", BASE, "python", "--version").stdout.strip()
    say(f"base {BASE} made by mmdebstrap ({python}) in {time.monotonic() - started:.0f} s")


def build_image(workdir: Path) -> None:
    """`docker build` of the project's Dockerfile on the local base."""
    started = time.monotonic()
    log = workdir / "build.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [
                DOCKER, "build", "--network=host", "--progress=plain",
                "--build-arg", f"PYTHON_IMAGE={BASE}", "--tag", IMAGE, str(ROOT),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            timeout=1200,
            check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise SmokeFailure(f"docker build failed ({done.returncode}):\n{tail(log)}")
    text = log.read_text(errors="replace")
    if "useradd warning" in text or "useradd: warning" in text:
        raise SmokeFailure("useradd warned while creating the image's user:\n" + tail(log))
    # A cached step prints nothing: say so rather than claim a check that did not run.
    step = re.search(r"^#(\d+) \[[^]]*\] RUN groupadd", text, re.MULTILINE)
    cached = step is not None and f"#{step.group(1)} CACHED" in text
    config = image_inspect()["Config"]
    if (config["User"], config["Entrypoint"]) != ("10001:10001", ["ocpi-puller"]):
        raise SmokeFailure(f"image user/entrypoint: {config['User']!r}, {config['Entrypoint']!r}")
    user = "its step cached" if cached else "no useradd warning"
    say(f"built {IMAGE} in {time.monotonic() - started:.0f} s (user 10001, {user})")


def image_inspect(image: str = IMAGE) -> dict[str, Any]:
    (found,) = json.loads(docker("image", "inspect", image).stdout)
    inspected: dict[str, Any] = found
    return inspected


def restrictions(service: dict[str, Any]) -> list[str]:
    """`docker run` flags for a compose service's read_only, tmpfs, cap_drop and security_opt."""
    flags = ["--read-only"] if service.get("read_only") else []
    for mount in service.get("tmpfs", []):
        flags += ["--tmpfs", mount]
    for capability in service.get("cap_drop", []):
        flags += ["--cap-drop", capability]
    for option in service.get("security_opt", []):
        flags += ["--security-opt", option]
    return flags


@contextlib.contextmanager
def sandbox_container(port: int, tokens: int) -> Iterator[str]:
    """The sandbox partner in the image: compose's command and restrictions, on the host network."""
    service = services()["sandbox"]
    command = [*service["command"], "--host=127.0.0.1", f"--port={port}", f"--tokens={tokens}"]
    name = f"ocpi-smoke-sandbox-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "--detach", "--name", name, "--network=host", *restrictions(service), IMAGE, *command
    )
    try:
        # compose's own health check, run in the container, against the port used here.
        check = service["healthcheck"]["test"][1:]
        check = [part.replace("127.0.0.1:8090", f"127.0.0.1:{port}") for part in check]
        started, deadline = time.monotonic(), time.monotonic() + 60
        while docker("exec", name, *check, check=False, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                logs = docker("logs", name, check=False)
                raise SmokeFailure(f"sandbox never healthy:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)
        waited = time.monotonic() - started
        say(f"sandbox container healthy in {waited:.1f} s ({tokens} tokens, compose's faults)")
        yield name
    finally:
        docker("rm", "--force", name, check=False)


def run_puller(
    workdir: Path, bootstrap: str, sandbox_port: int, otlp_endpoint: str
) -> tuple[dict[str, Any], float]:
    """The puller container with compose's environment pointed at the host; its summary."""
    service = services()["puller"]
    env: dict[str, str] = dict(service["environment"])
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "OCPI_PULLER_URL": f"http://127.0.0.1:{sandbox_port}/ocpi/versions",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    env_file = workdir / "puller.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    started = time.monotonic()
    done = docker(
        "run", "--rm", "--network=host", "--env-file", str(env_file), *restrictions(service),
        IMAGE, *service["command"],
        check=False, timeout=600,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    (workdir / "puller.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SmokeFailure(
            f"puller exited {done.returncode}:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise SmokeFailure(f"puller printed no summary; stderr:\n{done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary, elapsed


async def messages_in(bootstrap: str, topic: str) -> int:
    """How many records a topic holds (end offsets; nothing is compacted yet)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()  # refresh metadata once
            partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()


def check_run(
    summary: dict[str, Any], bootstrap: str, receiver: OtlpGrpcReceiver, tokens: int
) -> None:
    """Exit 0 was checked: now a complete summary, its messages in Kafka, its spans received."""
    if not (summary.get("complete") is True and summary.get("exit_code") == 0):
        raise SmokeFailure(f"incomplete summary: {json.dumps(summary)}")
    if summary["objects_emitted"] + summary["dead_lettered"] != tokens:
        raise SmokeFailure(f"{tokens} tokens served, summary says: {json.dumps(summary)}")
    env = services()["puller"]["environment"]
    topic = f"{env['OCPI_PULLER_TOPIC_PREFIX']}.{env['OCPI_PULLER_MODULE']}"
    stored = asyncio.run(messages_in(bootstrap, topic))
    if stored != summary["objects_emitted"]:
        raise SmokeFailure(f"{stored} messages in {topic}, {summary['objects_emitted']} emitted")
    spans = spans_of(receiver.trace_requests)
    roots = [s for s in spans if s.name == "ocpi.pull"]
    pages = [s for s in spans if s.name == "ocpi.page" and "ocpi.window" in s.attributes]
    if len(roots) != 1 or roots[0].attributes.get("ocpi.complete") is not True:
        raise SmokeFailure(f"expected one complete ocpi.pull span, got {len(roots)}")
    resource = roots[0].resource
    if (resource["service.name"], resource["service.version"]) != (
        env["OTEL_SERVICE_NAME"],
        VERSION,
    ):
        raise SmokeFailure(f"span resource: {resource}")
    # Retried attempts are spans of their own: at least one page span per acknowledged page.
    if len(pages) < summary["pages"]:
        raise SmokeFailure(f"{len(pages)} page spans for {summary['pages']} pages")
    say(
        f"summary: complete, {summary['objects_emitted']} objects in {summary['pages']} pages, "
        f"{summary['dead_lettered']} dead-lettered, {summary['retries']} retries"
    )
    say(f"kafka: {stored} messages in {topic} on the embedded broker ({bootstrap})")
    say(
        f"otlp/grpc: {len(spans)} spans received from service {resource['service.name']} "
        f"{resource['service.version']} (1 ocpi.pull, {len(pages)} window ocpi.page)"
    )


def smoke(workdir: Path, rebuild_base: bool, tokens: int) -> None:
    with docker_engine(workdir):
        make_base_image(workdir, rebuild_base)
        build_image(workdir)
        broker = start_broker(workdir / "noida")
        try:
            with OtlpGrpcReceiver("127.0.0.1") as receiver:
                sandbox_port = free_port()
                with sandbox_container(sandbox_port, tokens):
                    summary, elapsed = run_puller(
                        workdir, broker.bootstrap, sandbox_port, receiver.endpoint
                    )
                say(f"puller container exited 0 in {elapsed:.1f} s")
                check_run(summary, broker.bootstrap, receiver, tokens)
        finally:
            broker.stop()
        size = image_inspect()["Size"] / 1e6
        base_size = image_inspect(BASE)["Size"] / 1e6
        say(f"image {IMAGE}: {size:.0f} MB ({base_size:.0f} MB of it the local base)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make image-smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild-base", action="store_true", help="make the base image again")
    parser.add_argument("--tokens", type=int, default=20_000, help="tokens the sandbox serves")
    args = parser.parse_args(argv)
    problems = missing_prerequisites()
    if problems:
        for problem in problems:
            print(f"image-smoke: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ocpi-image-smoke-") as workdir:
        try:
            smoke(Path(workdir), args.rebuild_base, args.tokens)
        except SmokeFailure as failure:
            print(f"image-smoke: FAILED: {failure}", file=sys.stderr)
            return 1
    say("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
