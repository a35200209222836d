"""The Helm chart, checked by Helm itself and the Kubernetes API schemas, wired to the puller.

Helm v4 (helm-python-sdk, no binary, no cluster) lints the chart strictly and renders it as
`helm template` does, values schema included; kubernetes-validate checks every rendered object
against the OpenAPI schemas of Kubernetes 1.29 to 1.37, strictly (unknown fields fail). The
rest asserts what no tool knows: that the pod's arguments, environment and partners file build
the configuration the puller should run with.
"""

from __future__ import annotations

import base64
import itertools
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import trustme

from producer import partners
from producer.cli import build_parser
from producer.config import NAME_PATTERN, PartnerOptions, PullSettings
from producer.errors import ConfigError, PartnerAuthError
from tests.deploy.chart import (
    CHART,
    MODES,
    NAMESPACE,
    PARTNERS_PATH,
    Rendered,
    ci_values_files,
    loaded_chart,
    render,
    values_of,
)
from tests.deploy.wiring import check_env_names, settings_of

KUBERNETES_VERSIONS = [f"1.{minor}.0" for minor in range(29, 38)]
# charts/ocpi-puller/ci/<name>-values.yaml: one per mode, and any added later.
CI_EXAMPLES = [path.name.removesuffix("-values.yaml") for path in ci_values_files()]

# Every optional value set at once: where each lands is asserted below.
EXTRAS: dict[str, Any] = {
    "extraArgs": ["--log-level", "DEBUG"],
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
    "extraVolumes": [{"name": "ca", "configMap": {"name": "partner-ca"}}],
    "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ocpi-ca", "readOnly": True}],
    "settings": {
        "ca_bundle": "/etc/ocpi-ca/ca.pem",
        "resume": False,
        "date_to": "2026-01-01",
        "delivery": "exactly-once",
        "transaction_pages": 10,
    },
    "podLabels": {"team": "roaming"},
    "podAnnotations": {"example.com/owner": "roaming"},
    "nodeSelector": {"pool": "batch"},
    "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    "serviceAccountName": "ocpi-puller",
    "imagePullSecrets": [{"name": "registry"}],
    "job": {"activeDeadlineSeconds": None, "ttlSecondsAfterFinished": None},
    "otel": {"resourceAttributes": "deployment.environment=staging"},
}


# --- What the pod runs with ---------------------------------------------------------------------


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
        "metadata.namespace": NAMESPACE,
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


# --- Helm: lint, render, values schema ----------------------------------------------------------


def test_every_mode_has_its_ci_values_file() -> None:
    assert set(MODES) <= set(CI_EXAMPLES)


@pytest.mark.parametrize("example", [None, *CI_EXAMPLES])
def test_helm_lint_strict_passes(example: str | None) -> None:
    report = helm.lint(CHART, values_of(example), strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    # Severity 1 is information (Helm recommends an icon); 2 and 3 fail a strict lint.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    assert report["total_charts_linted"] == 1


def test_the_embedded_helm_is_v4() -> None:
    assert helm.helm_sdk_version().startswith("v4.")


@pytest.mark.parametrize("example", [None, *CI_EXAMPLES])
def test_every_rendered_object_is_valid_for_kubernetes_1_29_to_1_37(example: str | None) -> None:
    errors: list[str] = []
    for rendered in (render(example), render({**values_of(example), **EXTRAS})):
        assert rendered.manifests
        for manifest, version in itertools.product(rendered.manifests, KUBERNETES_VERSIONS):
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(part) for part in error.path)
                errors.append(f"{manifest['kind']} on {version}: {where}: {error.message}")
    assert errors == []


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"mode": "daily"}, "at '/mode'"),
        ({"indexed": {"shardCount": 0}}, "at '/indexed/shardCount'"),
        ({"settings": {"pull_id": "x"}}, "'pull_id' not allowed"),
        ({"settings": {"concurrency": 8}}, "'concurrency' not allowed"),
        ({"partnerDefaults": {"concurency": 8}}, "'concurency' not allowed"),
        ({"partners": [{"name": "a", "url": "http://a"}]}, "missing property 'modules'"),
        ({"partners": [{"name": "a b", "url": "http://a", "modules": ["tokens"]}]}, "/name'"),
        ({"otel": {"protocol": "http"}}, "at '/otel/protocol'"),
        ({"job": {"runId": "Run_1"}}, "at '/job/runId'"),
    ],
)
def test_helm_refuses_values_the_schema_refuses(override: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmError, match="values don't meet the specifications") as refused:
        render(override)
    assert complaint in str(refused.value)


def test_the_schema_accepts_the_settings_and_options_the_puller_has() -> None:
    schema = loaded_chart().schema
    assert schema is not None
    properties = schema["properties"]
    options = set(PartnerOptions.model_fields)
    # partnerDefaults and partners[].options are PartnerOptions, all of them.
    assert set(properties["partnerDefaults"]["properties"]) == options
    assert set(properties["partners"]["items"]["properties"]["options"]["properties"]) == options
    # `settings` are real settings, and none of those the chart sets itself.
    set_by_the_chart = {
        "url", "token", "module", "ocpi_version", "partner", "partner_country",
        "partner_party", "partners_file", "from_country", "from_party", "bootstrap_servers",
        "topic_prefix", "topic_partitions", "replication_factor", "pull_id", "shard_index",
        "shard_count", "incremental", "output", "no_progress_bar", "progress_bar",
    }  # fmt: skip
    assert set_by_the_chart <= set(PullSettings.model_fields)
    # A secret stays out of values (and so out of the ConfigMap): extraEnv from a Secret.
    secrets = {"kafka_sasl_password"}
    settings = set(properties["settings"]["properties"])
    assert settings == set(PullSettings.model_fields) - options - set_by_the_chart - secrets


# --- What Helm rendered -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_renders_its_workload_with_helm_labels(mode: str) -> None:
    rendered = render(mode)
    workload = "CronJob" if mode == "cronjob" else "Job"
    secret = [] if rendered.values["credentials"]["existingSecret"] else ["Secret"]
    assert rendered.kinds == sorted(["ConfigMap", workload, *secret])
    for manifest in rendered.manifests:
        assert manifest["metadata"]["namespace"] == NAMESPACE
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
    rendered = render(mode)
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
    rendered = render(mode)
    env = {item["name"]: item for item in rendered.container["env"]}
    assert env["OCPI_PULLER_PULL_ID"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}
    }


@pytest.mark.parametrize(
    "release", ["r", "a-long-release-name-for-the-roaming-hub-in-production-eu-01"]
)
@pytest.mark.parametrize("mode", MODES)
def test_names_stay_within_kubernetes_limits(release: str, mode: str) -> None:
    rendered = render(mode, release=release, revision=123)
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
    rendered = render("job", revision=3)
    assert rendered.job_name == "ocpi-ocpi-puller-3"
    assert rendered.container["args"] == ["pull", "--partners", PARTNERS_PATH]
    spec = rendered.job_spec
    assert not {"completionMode", "completions", "parallelism"} & set(spec)
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (6, 21600)
    # Configuration and credentials errors fail the Job at once: retrying does not help.
    # Evictions and preemptions (DisruptionTarget) are not counted against backoffLimit.
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
    (target,) = partners.targets(settings)
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
    created = render()
    secret = created.one("Secret")
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in created.container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert [r["name"] for r in refs] == [secret["metadata"]["name"]]
    assert {r["key"] for r in refs} <= set(secret["data"])

    existing = render("indexed")
    assert "Secret" not in existing.kinds
    env = {e["name"]: e for e in existing.container["env"]}
    for index, partner in enumerate(existing.values["partners"]):
        assert env[f"OCPI_PARTNER_TOKEN_{index}"]["valueFrom"]["secretKeyRef"] == {
            "name": existing.values["credentials"]["existingSecret"],
            "key": partner.get("tokenKey") or partner["name"],
        }
    targets = partners.targets(settings_in_pod(existing, tmp_path, monkeypatch))
    tokens = {t.partner: t.token.get_secret_value() for t in targets}
    assert tokens == {"nl-abc": "token-of-abc-token", "de-xyz": "token-of-de-xyz"}

    # A partner without a token anywhere: the chart's own `fail`, reported by Helm.
    other = {"name": "other", "url": "http://o", "modules": ["cdrs"]}
    with pytest.raises(helm.HelmError, match=r"set credentials\.tokens\.other"):
        render({"partners": [other]})


def test_an_indexed_job_shares_one_pull_over_its_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render("indexed")
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
    targets = partners.targets(settings)
    assert [(t.partner, t.module, t.ocpi_version) for t in targets] == [
        ("nl-abc", "locations", "2.2.1"),
        ("nl-abc", "tariffs", "2.2.1"),
        ("de-xyz", "tokens", "2.1.1"),
        ("de-xyz", "cdrs", "2.1.1"),
    ]
    assert {t.options.window_size for t in targets} == {1_000_000}
    assert (targets[0].options.concurrency, targets[0].options.rate_limit) == (8, 20)
    assert (targets[2].options.concurrency, targets[2].options.rate_limit) == ("auto", None)


def test_a_cronjob_pulls_incrementally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render("cronjob")
    cronjob = rendered.one("CronJob")["spec"]
    assert (cronjob["schedule"], cronjob["timeZone"]) == ("*/15 * * * *", "Europe/Amsterdam")
    assert cronjob["concurrencyPolicy"] == "Forbid"  # never two incremental pulls at once
    assert rendered.container["args"] == ["pull", "--partners", PARTNERS_PATH, "--incremental"]
    assert "completionMode" not in rendered.job_spec
    settings = settings_in_pod(rendered, tmp_path, monkeypatch)
    assert settings.incremental
    assert settings.incremental_overlap_s == 600
    assert settings.pull_id == rendered.job_name
    assert not settings.shows_progress_bar  # a pod logs lines


@pytest.mark.parametrize("mode", MODES)
def test_the_environment_is_one_the_puller_reads(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(mode)
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
    assert attributes["k8s.namespace.name"] == NAMESPACE
    partners.targets(
        settings_in_pod(rendered, tmp_path, monkeypatch)
    )  # the whole configuration is valid


def test_otlp_over_grpc_goes_to_port_4317() -> None:
    # The OTLP receivers (a Collector, Jaeger v2) take gRPC on 4317 and HTTP on 4318.
    for mode in MODES:
        otel = render(mode).values["otel"]
        if otel["endpoint"]:
            port = {"grpc": "4317", "http/protobuf": "4318"}[otel["protocol"]]
            assert otel["endpoint"].endswith(f":{port}"), (mode, otel)


def test_the_optional_values_land_where_kubernetes_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = render(EXTRAS)
    spec = rendered.job_spec
    pod, container = spec["template"]["spec"], rendered.container
    assert not {"activeDeadlineSeconds", "ttlSecondsAfterFinished"} & set(spec)
    assert spec["template"]["metadata"]["labels"]["team"] == "roaming"
    assert spec["template"]["metadata"]["annotations"] == EXTRAS["podAnnotations"]
    for key in ("nodeSelector", "tolerations", "serviceAccountName", "imagePullSecrets"):
        assert pod[key] == EXTRAS[key]
    assert EXTRAS["extraVolumes"][0] in pod["volumes"]
    assert EXTRAS["extraVolumeMounts"][0] in container["volumeMounts"]
    assert container["args"][-2:] == EXTRAS["extraArgs"]
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
    assert (settings.delivery, settings.transaction_pages) == ("exactly-once", 10)
