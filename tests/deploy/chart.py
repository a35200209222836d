"""The chart as Helm itself renders it: helm-python-sdk, Helm v4 embedded, no cluster.

`render` is `helm install --dry-run=client` (what `helm template` does: the values are checked
against values.schema.json, `required` and `fail` run, NOTES.txt is rendered). Helm's own
errors propagate as `helm_python.HelmError`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from tests.deploy.wiring import ROOT

CHART = ROOT / "charts" / "ocpi-puller"
PARTNERS_PATH = "/etc/ocpi-puller/partners.yaml"
NAMESPACE = "roaming"
# One example per mode: charts/ocpi-puller/ci/<mode>-values.yaml.
MODES = ["job", "indexed", "cronjob"]


def ci_values_files() -> list[Path]:
    """Every charts/ocpi-puller/ci/*-values.yaml (the modes' examples, and any added later)."""
    return sorted((CHART / "ci").glob("*-values.yaml"))


def values_of(source: str | dict[str, Any] | None = None) -> dict[str, Any]:
    """User-supplied values: ci/<source>-values.yaml for a mode's name, a dict as it is."""
    if source is None:
        return {}
    if isinstance(source, str):
        loaded: dict[str, Any] = yaml.safe_load(
            (CHART / "ci" / f"{source}-values.yaml").read_text()
        )
        return loaded
    return source


@functools.cache
def loaded_chart() -> helm.Chart:
    """The chart, loaded once by Helm (charts are immutable and safe to share)."""
    return helm.Chart.load(CHART)


@dataclass(frozen=True)
class Rendered:
    """What Helm rendered for a release: the manifests, NOTES.txt, and the values it used."""

    values: dict[str, Any]
    manifests: list[dict[str, Any]]
    notes: str

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = [m for m in self.manifests if m["kind"] == kind]
        return found

    @property
    def kinds(self) -> list[str]:
        return sorted(m["kind"] for m in self.manifests)

    @property
    def job_spec(self) -> dict[str, Any]:
        if "CronJob" in self.kinds:
            return dict(self.one("CronJob")["spec"]["jobTemplate"]["spec"])
        return dict(self.one("Job")["spec"])

    @property
    def job_name(self) -> str:
        """The Job's name, and so the pull id; a CronJob's run is named as its controller does."""
        if "CronJob" in self.kinds:
            return f"{self.one('CronJob')['metadata']['name']}-29400000"
        return str(self.one("Job")["metadata"]["name"])

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.job_spec["template"]["spec"]["containers"]
        return dict(container)


def manifests_of(stream: str) -> list[dict[str, Any]]:
    """The objects of a rendered YAML stream (empty documents dropped)."""
    return [document for document in yaml.safe_load_all(stream) if document]


def render(
    source: str | dict[str, Any] | None = None,
    *,
    release: str = "ocpi",
    revision: int | None = None,
) -> Rendered:
    """`helm install <release> charts/ocpi-puller -n roaming --dry-run=client -f <values>`.

    An install is always revision 1; with `revision`, the chart is rendered as `helm upgrade`
    renders that revision (Helm's template engine, schema check included, no release storage).
    """
    values = values_of(source)
    merged = loaded_chart().merge_values(values)
    if revision is None:
        with helm.Config(storage_driver="memory", namespace=NAMESPACE) as config:
            release_ = config.install(
                loaded_chart(), release, values, namespace=NAMESPACE, dry_run="client"
            )
        return Rendered(merged, manifests_of(release_["manifest"]), release_["notes"])
    files = loaded_chart().render(
        values, name=release, namespace=NAMESPACE, revision=revision, is_upgrade=True
    )
    notes = files.pop(f"{loaded_chart().name}/templates/NOTES.txt", "")
    stream = "\n---\n".join(text for name, text in sorted(files.items()) if "/_" not in name)
    return Rendered(merged, manifests_of(stream), notes)
