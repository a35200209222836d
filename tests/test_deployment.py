"""The deployment files parse and are wired to what the code reads: Dockerfile, compose, chart.

There is no Docker, Helm or cluster here. The chart is rendered by tests/helm.py, a small
Go-template renderer with Helm's semantics that refuses what it does not implement. `helm lint`
and `helm template` stay the reference; docs/deployment.md says what else an operator should run.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from producer.cli import build_parser, settings_from_args
from producer.config import NAME_PATTERN, PartnerOptions, PullSettings
from producer.errors import ConfigError, PartnerAuthError
from tests.helm import (
    CHART,
    MODES,
    PARTNERS_PATH,
    ROOT,
    Rendered,
    Renderer,
    RenderError,
    as_helm_numbers,
    chart_values,
    parse_template,
    render,
    schema_errors,
    values_schema,
)

# --- What the code reads ------------------------------------------------------------------------


def settings_env_names() -> set[str]:
    """Every environment variable PullSettings reads."""
    names: set[str] = set()
    for name, info in PullSettings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
        names.update(str(c).upper() for c in choices or [f"OCPI_PULLER_{name}"])
    return names


def check_env_names(env: dict[str, Any], where: str) -> None:
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


def secret_data(rendered: Rendered) -> dict[str, str]:
    """The tokens the pod can read: the created Secret, or one standing in for yours."""
    if rendered.values["credentials"]["existingSecret"]:
        keys = {p.get("tokenKey") or p["name"] for p in rendered.values["partners"]}
        return {key: f"token-of-{key}" for key in keys}
    return {
        key: base64.b64decode(value).decode()
        for key, value in rendered.one("Secret")["data"].items()
    }


def pod_env(rendered: Rendered) -> dict[str, str]:
    """The container's environment as the kubelet sets it: downward API, Secret, $(VAR)."""
    downward = {
        "metadata.labels['batch.kubernetes.io/job-name']": rendered.job_name,
        "metadata.name": f"{rendered.job_name}-x7k2p",
        "metadata.namespace": "roaming",
    }
    tokens = secret_data(rendered)
    env: dict[str, str] = {}
    for item in rendered.container["env"]:
        source = item.get("valueFrom", {})
        if "fieldRef" in source:
            env[item["name"]] = downward[source["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in source:
            env[item["name"]] = tokens[source["secretKeyRef"]["key"]]
        else:
            value = item["value"]
            assert isinstance(value, str), f"{item['name']}: Kubernetes takes only a string"
            for reference in re.findall(r"\$\((\w+)\)", value):
                assert reference in env, f"{item['name']} uses $({reference}) before it is set"
                value = value.replace(f"$({reference})", env[reference])
            env[item["name"]] = value
    return env


def settings_in_pod(
    rendered: Rendered,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shard: int = 0,
    mounted: dict[str, Path] | None = None,
) -> PullSettings:
    """The settings the container runs with: its args, its env, the mounted partners file and
    other `mounted` files (pod path → a local file standing in for it)."""
    partners = tmp_path / "partners.yaml"
    partners.write_text(rendered.one("ConfigMap")["data"]["partners.yaml"])
    local = {PARTNERS_PATH: partners, **(mounted or {})}
    env = {name: str(local.get(value, value)) for name, value in pod_env(rendered).items()}
    if rendered.job_spec.get("completionMode") == "Indexed":
        env["JOB_COMPLETION_INDEX"] = str(shard)  # Kubernetes sets it in each pod
    argv = [str(local.get(a, a)) for a in rendered.container["args"]]
    return settings_of(argv, env, monkeypatch)


# --- The renderer renders as Helm does ----------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [  # expected: what Helm prints (Go's text/template and fmt, Sprig), values as in values.yaml
        ("a  {{- 1 -}}  b\n{{- 2 }}", {}, "a1b2"),
        ("{{ .n }} {{ .n | int }} {{ toJson .n }}", {"n": 10**6}, "1e+06 1000000 1000000"),
        ("{{ .a }} {{ .b }} {{ quote .c }}", {"a": 1e-5, "b": 0.5, "c": 99}, '1e-05 0.5 "99"'),
        ('{{ .none }}|{{ default "d" .none }}|{{ quote .none }}', {}, "|d|"),
        ("{{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ end }}", {"m": {"b": 1, "a": 0}}, "a0b1"),
        ('{{ $x := "a" }}{{ with .s }}{{ $x = . }}{{ end }}{{ $x }}', {"s": "b"}, "b"),
        ('{{ if and .s (eq .s "x") }}x{{ else if .s }}s{{ end }}', {"s": "y"}, "s"),
        ('{{ if and .nope (eq .nope.deeper "x") }}x{{ end }}', {}, ""),
    ],
)  # fmt: skip
def test_the_renderer_has_go_template_semantics(
    template: str, values: dict[str, Any], expected: str
) -> None:
    assert Renderer({}).execute(parse_template(template, {}), as_helm_numbers(values)) == expected


@pytest.mark.parametrize(
    ("template", "values", "error"),
    [
        ("{{ lookup 1 }}", {}, "not supported"),
        ("{{ .a.b }}", {}, "nil pointer"),
        ("{{ eq .n 1 }}", {"n": 1}, "incompatible types"),
        ('{{ printf "%d" .n }}', {"n": 1}, "%d"),
        ("{{ if .n }}", {}, "closed by None"),
    ],
)
def test_the_renderer_fails_where_helm_fails(
    template: str, values: dict[str, Any], error: str
) -> None:
    with pytest.raises(RenderError, match=error):
        Renderer({}).execute(parse_template(template, {}), as_helm_numbers(values))


# --- Dockerfile ---------------------------------------------------------------------------------


def dockerfile_stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """The global ARGs, and each stage's instructions (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
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


def test_the_dockerfile_builds_a_slim_non_root_image(monkeypatch: pytest.MonkeyPatch) -> None:
    global_args, stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage"
    build, runtime = stages[0], stages[-1]
    base = runtime[0][1].split(" AS ")[0].replace("${PYTHON_IMAGE}", global_args["PYTHON_IMAGE"])
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base)
    # The runtime stage installs nothing: it takes the virtualenv the build stage made.
    runtime_runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip ", runtime_runs)
    build_stage = build[0][1].split(" AS ")[1]
    assert ("COPY", f"--from={build_stage} /opt/venv /opt/venv") in runtime
    *_, user = [rest for keyword, rest in runtime if keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), "numeric: Kubernetes' runAsNonRoot can only check a numeric user"
    assert int(uid) != 0
    assert int(uid) == chart_values()["podSecurityContext"]["runAsUser"]
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
    assert settings.progress_bar is False
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # the root filesystem is read-only in the chart


# --- docker-compose.yml -------------------------------------------------------------------------


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_compose_runs_kafka_in_kraft_mode_without_topic_auto_creation() -> None:
    kafka = compose_services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not [name for name in env if "ZOOKEEPER" in name]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert len(env["CLUSTER_ID"]) == 22, "a base64url UUID"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "kafka:9092"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
    host_port = advertised["HOST"].rsplit(":", 1)[1]
    assert f"{host_port}:{host_port}" in kafka["ports"]
    assert "--bootstrap-server localhost:9092" in " ".join(kafka["healthcheck"]["test"])


def test_compose_wires_the_puller_to_kafka_jaeger_and_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose_services()
    jaeger, sandbox, puller = services["jaeger"], services["sandbox"], services["puller"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert {"16686:16686", "4318:4318"} <= set(jaeger["ports"])

    # The sandbox's command is one our CLI takes, and its health check asks that very server.
    served = build_parser().parse_args(sandbox["command"])
    assert (served.host, served.port) == ("0.0.0.0", 8090)
    assert f"{served.port}:{served.port}" in sandbox["ports"]
    assert served.tokens >= 100_000, "a realistic size"
    assert served.error_rate > 0, "some faults"
    assert served.throttle_rate > 0
    test = sandbox["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "healthcheck", "exec")
    assert f"'http://127.0.0.1:{served.port}/ocpi/versions'" in test[3]
    assert f"'Token {served.token_value}'" in test[3]

    # The puller: the sandbox's image, started once Kafka and the sandbox are healthy.
    assert puller["image"] == sandbox["image"]
    assert puller["build"] == sandbox["build"] == "."
    conditions = {name: d.get("condition") for name, d in puller["depends_on"].items()}
    assert conditions == {
        "kafka": "service_healthy",
        "sandbox": "service_healthy",
        "jaeger": "service_started",
    }
    env = {k: str(v) for k, v in puller["environment"].items()}
    check_env_names(env, "docker-compose.yml")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == "ocpi-puller"
    settings = settings_of(puller["command"], env, monkeypatch)
    assert settings.bootstrap_servers == "kafka:9092"
    (target,) = settings.targets()
    assert target.url == f"http://sandbox:{served.port}/ocpi/versions"
    assert target.token.get_secret_value() == served.token_value
    assert target.partner_country == served.country_code
    assert target.partner_party == served.party_id


def test_compose_and_chart_use_one_image_of_this_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"], chart["appVersion"]) == (
        "v2",
        "ocpi-puller",
        version,
    )
    repository, tag = compose_services()["puller"]["image"].rsplit(":", 1)
    values = chart_values()
    assert repository == values["image"]["repository"]
    assert tag == version
    assert values["image"]["tag"] == ""  # the chart's appVersion
    assert f"ARG VERSION={version}" in (ROOT / "Dockerfile").read_text()
    assert render(values).container["image"] == f"{repository}:{tag}"


# --- The chart: values and schema ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_values_satisfy_the_schema(mode: str) -> None:
    assert list(schema_errors(values_schema(), chart_values(mode))) == []


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"mode": "daily"}, ".mode"),
        ({"indexed": {"shardCount": 0}}, ".indexed.shardCount"),
        ({"settings": {"pull_id": "x"}}, "unknown key 'pull_id'"),
        ({"settings": {"concurrency": 8}}, "unknown key 'concurrency'"),
        ({"partnerDefaults": {"concurency": 8}}, "unknown key 'concurency'"),
        ({"partners": [{"name": "a", "url": "http://a"}]}, "modules is required"),
        ({"partners": [{"name": "a b", "url": "http://a", "modules": ["tokens"]}]}, ".name"),
        ({"otel": {"protocol": "http"}}, ".otel.protocol"),
        ({"job": {"runId": "Run_1"}}, ".job.runId"),
    ],
)
def test_the_schema_refuses_bad_values(override: dict[str, Any], complaint: str) -> None:
    errors = list(schema_errors(values_schema(), chart_values(override)))
    assert any(complaint in error for error in errors), errors


def test_the_schema_accepts_the_settings_and_options_the_puller_has() -> None:
    properties = values_schema()["properties"]
    options = set(PartnerOptions.model_fields)
    # partnerDefaults and partners[].options are PartnerOptions, all of them.
    assert set(properties["partnerDefaults"]["properties"]) == options
    assert set(properties["partners"]["items"]["properties"]["options"]["properties"]) == options
    # `settings` are real settings, and none of those the chart sets itself.
    set_by_the_chart = {
        "url", "token", "module", "ocpi_version", "partner", "partner_country",
        "partner_party", "partners_file", "from_country", "from_party", "bootstrap_servers",
        "topic_prefix", "topic_partitions", "replication_factor", "pull_id", "shard_index",
        "shard_count", "incremental", "output", "progress_bar",
    }  # fmt: skip
    assert set_by_the_chart <= set(PullSettings.model_fields)
    settings = set(properties["settings"]["properties"])
    assert settings <= set(PullSettings.model_fields) - options - set_by_the_chart


# --- The chart: rendered manifests --------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_renders_its_workload_with_helm_labels(mode: str) -> None:
    rendered = render(chart_values(mode))
    workload = "CronJob" if mode == "cronjob" else "Job"
    secret = [] if rendered.values["credentials"]["existingSecret"] else ["Secret"]
    assert rendered.kinds == sorted(["ConfigMap", workload, *secret])
    for manifest in rendered.manifests:
        assert manifest["metadata"]["namespace"] == "roaming"
        assert manifest["metadata"]["labels"] == {
            "helm.sh/chart": "ocpi-puller-0.1.0",
            "app.kubernetes.io/name": "ocpi-puller",
            "app.kubernetes.io/instance": "ocpi",
            "app.kubernetes.io/version": "0.1.0",
            "app.kubernetes.io/component": "puller",
            "app.kubernetes.io/part-of": "ocpi-puller",
            "app.kubernetes.io/managed-by": "Helm",
        }
    pod_labels = rendered.job_spec["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/instance"] == "ocpi"
    assert rendered.job_name.removesuffix("-29400000") in rendered.notes


@pytest.mark.parametrize("mode", MODES)
def test_the_pod_meets_the_restricted_pod_security_standard(mode: str) -> None:
    rendered = render(chart_values(mode))
    pod, container = rendered.job_spec["template"]["spec"], rendered.container
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"  # a restart is a new pod of the Job: it resumes
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(set(v) <= {"name", "configMap", "emptyDir", "secret"} for v in volumes.values())
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "configMap" in volumes[mounts[PARTNERS_PATH.rsplit("/", 1)[0]]]
    assert set(container["resources"]) == {"requests", "limits"}


@pytest.mark.parametrize("mode", MODES)
def test_the_pull_id_is_the_job_name_through_the_downward_api(mode: str) -> None:
    rendered = render(chart_values(mode))
    env = {item["name"]: item for item in rendered.container["env"]}
    assert env["OCPI_PULLER_PULL_ID"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}
    }


@pytest.mark.parametrize(
    "release", ["r", "a-long-release-name-for-the-roaming-hub-in-production-eu-01"]
)
@pytest.mark.parametrize("mode", MODES)
def test_names_stay_within_kubernetes_limits(release: str, mode: str) -> None:
    rendered = render(chart_values(mode), release=release, revision=123)
    for manifest in rendered.manifests:
        name = manifest["metadata"]["name"]
        assert len(name) <= {"Job": 63, "CronJob": 52}.get(manifest["kind"], 253)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert NAME_PATTERN.fullmatch(rendered.job_name), "a pull id the puller accepts"
    if mode == "job":
        assert rendered.job_name.endswith("-123"), "the revision, as no runId is set"


def test_a_job_pulls_everything_once_from_the_partners_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart_values("job"), revision=3)
    assert rendered.job_name == "ocpi-ocpi-puller-3"
    assert rendered.container["args"] == ["pull", "--partners", PARTNERS_PATH]
    spec = rendered.job_spec
    assert not {"completionMode", "completions", "parallelism"} & set(spec)
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (6, 21600)
    # Configuration and credentials errors fail the Job at once: retrying does not help.
    fail_job, ignore = spec["podFailurePolicy"]["rules"]
    assert fail_job["action"] == "FailJob"
    assert fail_job["onExitCodes"] == {
        "containerName": rendered.container["name"],
        "operator": "In",
        "values": [ConfigError.exit_code, PartnerAuthError.exit_code],
    }
    assert ignore == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }

    settings = settings_in_pod(rendered, tmp_path, monkeypatch)
    assert settings.pull_id == rendered.job_name
    assert not settings.incremental
    assert (settings.shard_index, settings.shard_count) == (0, 1)
    assert (settings.bootstrap_servers, settings.topic_prefix) == ("kafka:9092", "ocpi")
    assert (settings.topic_partitions, settings.replication_factor) == (6, 3)
    (target,) = settings.targets()
    partner = rendered.values["partners"][0]
    assert (target.partner, target.url, target.module) == (
        partner["name"],
        partner["url"],
        partner["modules"][0],
    )
    assert (target.ocpi_version, target.partner_country, target.partner_party) == (
        partner["ocpiVersion"],
        partner["countryCode"],
        partner["partyId"],
    )
    assert target.token.get_secret_value() == rendered.values["credentials"]["tokens"]["sandbox"]


def test_the_token_variables_come_from_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = render(chart_values())
    secret = created.one("Secret")
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in created.container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert [r["name"] for r in refs] == [secret["metadata"]["name"]]
    assert {r["key"] for r in refs} <= set(secret["data"])

    existing = render(chart_values("indexed"))
    assert "Secret" not in existing.kinds
    env = {e["name"]: e for e in existing.container["env"]}
    for index, partner in enumerate(existing.values["partners"]):
        assert env[f"OCPI_PARTNER_TOKEN_{index}"]["valueFrom"]["secretKeyRef"] == {
            "name": existing.values["credentials"]["existingSecret"],
            "key": partner.get("tokenKey") or partner["name"],
        }
    targets = settings_in_pod(existing, tmp_path, monkeypatch).targets()
    tokens = {t.partner: t.token.get_secret_value() for t in targets}
    assert tokens == {"nl-abc": "token-of-abc-token", "de-xyz": "token-of-de-xyz"}

    other = {"name": "other", "url": "http://o", "modules": ["cdrs"]}
    with pytest.raises(RenderError, match=r"credentials\.tokens\.other"):
        render(chart_values({"partners": [other]}))


def test_an_indexed_job_shares_one_pull_over_its_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart_values("indexed"))
    spec, shards = rendered.job_spec, rendered.values["indexed"]["shardCount"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == (
        "Indexed",
        shards,
        shards,
    )
    env = {e["name"]: e for e in rendered.container["env"]}
    assert env["OCPI_PULLER_SHARD_COUNT"]["value"] == str(shards)
    for shard in (0, shards - 1):
        settings = settings_in_pod(rendered, tmp_path, monkeypatch, shard=shard)
        assert (settings.shard_index, settings.shard_count) == (shard, shards)
        assert settings.pull_id == rendered.job_name  # one pull id for every shard
    # Numbers arrive as numbers: a bare quote in the template would have made 1e+06 of 1000000.
    assert (settings.kafka_deadline_s, settings.plan_wait_s) == (600, 1800)
    assert (settings.from_country, settings.from_party) == ("DE", "OCP")
    targets = settings.targets()
    assert [(t.partner, t.module, t.ocpi_version) for t in targets] == [
        ("nl-abc", "locations", "2.2.1"),
        ("nl-abc", "tariffs", "2.2.1"),
        ("de-xyz", "tokens", "2.1.1"),
        ("de-xyz", "cdrs", "2.1.1"),
    ]
    assert {t.options.window_size for t in targets} == {1_000_000}
    assert (targets[0].options.concurrency, targets[0].options.rate_limit) == (8, 20)
    assert (targets[2].options.concurrency, targets[2].options.rate_limit) == (4, None)


def test_a_cronjob_pulls_incrementally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render(chart_values("cronjob"))
    cronjob = rendered.one("CronJob")["spec"]
    assert (cronjob["schedule"], cronjob["timeZone"]) == ("*/15 * * * *", "Europe/Amsterdam")
    assert cronjob["concurrencyPolicy"] == "Forbid"  # never two incremental pulls at once
    assert rendered.container["args"] == ["pull", "--partners", PARTNERS_PATH, "--incremental"]
    assert "completionMode" not in rendered.job_spec
    settings = settings_in_pod(rendered, tmp_path, monkeypatch)
    assert settings.incremental
    assert settings.incremental_overlap_s == 600
    assert settings.pull_id == rendered.job_name


@pytest.mark.parametrize("mode", MODES)
def test_the_environment_is_one_the_puller_reads(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(chart_values(mode))
    env = pod_env(rendered)  # which also checks that every $(VAR) is set before its use
    check_env_names(env, f"the chart ({mode})")
    names = [e["name"] for e in rendered.container["env"]]
    assert len(names) == len(set(names))
    otel = rendered.values["otel"]
    if otel["endpoint"]:
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == otel["endpoint"]
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == otel["protocol"]
    else:
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    assert env["OTEL_SERVICE_NAME"] == (otel["serviceName"] or "ocpi-ocpi-puller")
    attributes = dict(pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attributes["k8s.job.name"] == rendered.job_name
    assert attributes["k8s.namespace.name"] == "roaming"
    settings_in_pod(rendered, tmp_path, monkeypatch).targets()  # the whole configuration is valid


def test_the_optional_values_land_where_kubernetes_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extras: dict[str, Any] = {
        "extraArgs": ["--log-level", "DEBUG"],
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "extraVolumes": [{"name": "ca", "configMap": {"name": "partner-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ocpi-ca", "readOnly": True}],
        "settings": {"ca_bundle": "/etc/ocpi-ca/ca.pem", "resume": False, "date_to": "2026-01-01"},
        "podLabels": {"team": "roaming"},
        "podAnnotations": {"example.com/owner": "roaming"},
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "serviceAccountName": "ocpi-puller",
        "imagePullSecrets": [{"name": "registry"}],
        "job": {"activeDeadlineSeconds": None, "ttlSecondsAfterFinished": None},
        "otel": {"resourceAttributes": "deployment.environment=staging"},
    }
    values = chart_values(extras)
    assert list(schema_errors(values_schema(), values)) == []
    rendered = render(values)
    spec = rendered.job_spec
    pod, container = spec["template"]["spec"], rendered.container
    assert not {"activeDeadlineSeconds", "ttlSecondsAfterFinished"} & set(spec)
    assert spec["template"]["metadata"]["labels"]["team"] == "roaming"
    assert spec["template"]["metadata"]["annotations"] == extras["podAnnotations"]
    for key in ("nodeSelector", "tolerations", "serviceAccountName", "imagePullSecrets"):
        assert pod[key] == extras[key]
    assert extras["extraVolumes"][0] in pod["volumes"]
    assert extras["extraVolumeMounts"][0] in container["volumeMounts"]
    assert container["args"][-2:] == extras["extraArgs"]
    assert build_parser().parse_args(container["args"]).log_level == "DEBUG"
    env = pod_env(rendered)
    assert env["TZ"] == "UTC"
    assert env["OTEL_RESOURCE_ATTRIBUTES"].endswith(",deployment.environment=staging")
    ca = tmp_path / "ca.pem"  # the settings load the bundle, so it must be a real CA
    trustme.CA().cert_pem.write_to_path(str(ca))
    settings = settings_in_pod(rendered, tmp_path, monkeypatch, mounted={"/etc/ocpi-ca/ca.pem": ca})
    assert settings.ca_bundle == ca
    assert settings.resume is False
    assert settings.date_to is not None
    assert settings.date_to.year == 2026


def api_model_errors(value: Any, type_name: str, path: str) -> Iterator[str]:
    """Fields and types of a manifest that the Kubernetes API models do not have."""
    from kubernetes import client  # type: ignore[import-not-found, import-untyped, unused-ignore]

    scalars: dict[str, Any] = {"str": str, "bytes": str, "datetime": str, "float": int | float}
    scalars |= {"int": int, "bool": bool, "object": object}
    if match := re.fullmatch(r"(?:List|list)\[(.+)\]", type_name):
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            yield from api_model_errors(item, match.group(1), f"{path}[{index}]")
    elif match := re.fullmatch(r"(?:Dict|dict)[\[(]str, (.+)[\])]", type_name):
        assert isinstance(value, dict), path
        for key, item in value.items():
            yield from api_model_errors(item, match.group(1), f"{path}.{key}")
    elif type_name in scalars:
        if not isinstance(value, scalars[type_name]) or (type_name == "int" and value is True):
            yield f"{path}: {value!r} is not {type_name}"
    else:
        model = getattr(client, type_name)
        fields = {json_name: attr for attr, json_name in model.attribute_map.items()}
        for key, item in value.items():
            if key not in fields:
                yield f"{path}.{key}: no such field in {type_name}"
            else:
                yield from api_model_errors(item, model.openapi_types[fields[key]], f"{path}.{key}")


@pytest.mark.parametrize("mode", MODES)
def test_the_manifests_have_only_fields_the_kubernetes_api_has(mode: str) -> None:
    pytest.importorskip("kubernetes.client", reason="needs the kubernetes package")
    models = {"Job": "V1Job", "CronJob": "V1CronJob", "ConfigMap": "V1ConfigMap"}
    models["Secret"] = "V1Secret"
    for manifest in render(chart_values(mode)).manifests:
        kind = manifest["kind"]
        assert list(api_model_errors(manifest, models[kind], kind)) == []
