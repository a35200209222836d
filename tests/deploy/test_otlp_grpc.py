"""Real OTLP over gRPC from a real pull, as the chart's cronjob example configures it.

The puller is configured only by the standard `OTEL_EXPORTER_OTLP_*` environment
(`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`, as `otel.protocol: grpc` sets it in the pod); a real gRPC
server with the collector's trace and metrics services stands in for Jaeger or a Collector.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from producer.observe.telemetry import INSTRUMENTATION_NAME, service_version
from tests.deploy.otlp_grpc import OtlpGrpcReceiver, spans_of
from tests.support import TOKEN, pull, records, sandbox

SERVICE_NAME = "ocpi-puller-grpc-test"
OBJECTS = 2_400
PAGE = 300


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpGrpcReceiver]:
    """A gRPC receiver, and the puller's OTLP environment pointing at it."""
    with OtlpGrpcReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_SERVICE_NAME", SERVICE_NAME)
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.job.name=ocpi-ocpi-puller-7")
        yield running


async def test_a_pull_exports_its_spans_over_otlp_grpc(
    bootstrap: str, prefix: str, receiver: OtlpGrpcReceiver
) -> None:
    async with sandbox(sizes={"tokens": OBJECTS}, max_limit=PAGE) as (base, _):
        result = await pull(base, bootstrap, prefix)  # telemetry built from the environment
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.objects_emitted == OBJECTS

    requests = receiver.trace_requests
    assert requests, "no trace export arrived over gRPC"
    assert all(
        m.get("user-agent", "").startswith("OTel-OTLP-Exporter-Python") for m in receiver.metadata
    )
    spans = spans_of(requests)

    # The resource: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the package version.
    for exported in spans:
        assert exported.resource["service.name"] == SERVICE_NAME
        assert exported.resource["service.version"] == service_version()
        assert exported.resource["k8s.job.name"] == "ocpi-ocpi-puller-7"
        assert exported.resource["telemetry.sdk.language"] == "python"
        assert exported.scope_name == INSTRUMENTATION_NAME
        assert exported.scope_version == service_version()

    # One pull span, the root of the trace, with discovery and every page under it.
    (root,) = [s for s in spans if s.name == "ocpi.pull"]
    assert root.parent_span_id == ""
    assert root.attributes["ocpi.partner"] == "sbx"
    assert root.attributes["ocpi.pull_id"] == summary.pull_id
    assert root.attributes["ocpi.complete"] is True
    assert root.attributes["ocpi.objects_emitted"] == OBJECTS
    discovery = [s for s in spans if s.name == "ocpi.discovery"]
    assert len(discovery) == 2
    all_pages = [s for s in spans if s.name == "ocpi.page"]
    for child in discovery + all_pages:
        assert child.trace_id == root.trace_id
        assert child.parent_span_id == root.span_id
        assert child.span.kind == Span.SpanKind.SPAN_KIND_CLIENT
        assert child.attributes["http.request.method"] == "GET"
        assert child.attributes["http.response.status_code"] == 200
        assert child.attributes["url.full"].startswith(base)

    # Window pages (planning probes carry no window) cover every object once.
    pages = [s for s in all_pages if "ocpi.window" in s.attributes]
    assert len(pages) == summary.pages
    for page in pages:
        assert page.attributes["ocpi.status_code"] == 1000
        assert 0 < page.attributes["ocpi.object_count"] <= PAGE
        assert page.attributes["ocpi.total_count"] == OBJECTS
    assert sum(p.attributes["ocpi.object_count"] for p in pages) == OBJECTS

    # Each message's traceparent names the span, received over gRPC, of the page that fetched it.
    by_ids = {(p.trace_id, p.span_id) for p in pages}
    messages = await records(bootstrap, f"{prefix}.tokens")
    assert len(messages) == OBJECTS
    named = {tuple(dict(m.headers)["traceparent"].decode().split("-")[1:3]) for m in messages}
    assert named == by_ids

    # The credentials token never reaches the collector, in spans or in metrics.
    everything = b"".join(r.SerializeToString() for r in requests + receiver.metric_requests)
    assert TOKEN.encode() not in everything
    assert b"c2FuZGJveC10b2tlbg" not in everything  # base64("sandbox-token") without padding
