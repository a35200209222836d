"""Real OTLP/HTTP from a real pull: spans, their resource, and the traceparent on Kafka messages.

The puller is configured only by the standard `OTEL_EXPORTER_OTLP_*` environment, as in a
container; a small aiohttp receiver stands in for the collector (Jaeger, an OTel Collector).
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from producer.observe.telemetry import INSTRUMENTATION_NAME, service_version
from tests.support import TOKEN, pull, records, sandbox

SERVICE_NAME = "ocpi-puller-otlp-test"
OBJECTS = 2_400
PAGE = 300


@dataclass
class Received:
    """What the receiver was sent, as raw request bodies per path."""

    bodies: dict[str, list[bytes]] = field(default_factory=dict)
    content_types: set[str] = field(default_factory=set)


class OtlpReceiver:
    """An OTLP/HTTP receiver on a free port, in a thread of its own.

    Not on the test's event loop: the span processor's final flush is a blocking HTTP POST made
    from `Telemetry.shutdown()` on that loop, which would then wait for itself.
    """

    def __init__(self) -> None:
        self.received = Received()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.bodies.setdefault(request.path, []).append(body)
        self.received.content_types.add(request.content_type)
        # An empty Export*ServiceResponse is an empty protobuf message for every signal.
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._handle)
        app.router.add_post("/v1/metrics", self._handle)
        app.router.add_post("/v1/logs", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A receiver, and the puller's OTLP environment pointing at it."""
    with OtlpReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{running.port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_SERVICE_NAME", SERVICE_NAME)
        yield running


def value_of(value: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue (scalars only: that is all the puller sets)."""
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, Any]:
    """OTLP key/value attributes as a dict."""
    return {pair.key: value_of(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class ExportedSpan:
    """One decoded span with the resource and scope it was exported under."""

    span: Span
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        return self.span.parent_span_id.hex()


def decode_spans(bodies: list[bytes]) -> list[ExportedSpan]:
    """Every span of every ExportTraceServiceRequest body."""
    spans: list[ExportedSpan] = []
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = attributes_of(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ExportedSpan(
                            span,
                            attributes_of(span.attributes),
                            resource,
                            scope_spans.scope.name,
                            scope_spans.scope.version,
                        )
                    )
    return spans


def decode_metric_points(bodies: list[bytes]) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """Metric name → (attributes, value) of every sum/gauge point (histograms: their count)."""
    points: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for body in bodies:
        request = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in request.resource_metrics:
            resource = attributes_of(resource_metrics.resource.attributes)
            assert resource["service.name"] == SERVICE_NAME
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        if kind == "histogram":
                            value: float = point.count
                        else:
                            value = getattr(point, point.WhichOneof("value"))
                        points.setdefault(metric.name, []).append(
                            (attributes_of(point.attributes), value)
                        )
    return points


async def test_a_pull_exports_its_spans_over_otlp_http(
    bootstrap: str, prefix: str, receiver: OtlpReceiver, record_property: Any
) -> None:
    async with sandbox(sizes={"tokens": OBJECTS}, max_limit=PAGE) as (base, _):
        result = await pull(base, bootstrap, prefix)  # telemetry built from the environment
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.objects_emitted == OBJECTS

    got = receiver.received
    assert got.bodies.get("/v1/traces"), f"no traces arrived (paths: {sorted(got.bodies)})"
    assert got.content_types <= {"application/x-protobuf"}
    spans = decode_spans(got.bodies["/v1/traces"])

    # The resource: OTEL_SERVICE_NAME and the installed package version.
    for exported in spans:
        assert exported.resource["service.name"] == SERVICE_NAME
        assert exported.resource["service.version"] == service_version()
        assert exported.resource["telemetry.sdk.language"] == "python"
        assert exported.scope_name == INSTRUMENTATION_NAME
        assert exported.scope_version == service_version()

    # One pull span, the root of the trace.
    roots = [s for s in spans if s.span.name == "ocpi.pull"]
    assert len(roots) == 1
    root = roots[0]
    assert root.parent_span_id == ""
    assert root.attributes["ocpi.partner"] == "sbx"
    assert root.attributes["ocpi.pull_id"] == summary.pull_id
    assert root.attributes["ocpi.complete"] is True
    assert root.attributes["ocpi.objects_emitted"] == OBJECTS

    # Discovery (versions, version details) and every page are children of the pull span.
    discovery = [s for s in spans if s.span.name == "ocpi.discovery"]
    assert len(discovery) == 2
    all_pages = [s for s in spans if s.span.name == "ocpi.page"]
    assert all_pages
    for child in discovery + all_pages:
        assert child.trace_id == root.trace_id
        assert child.parent_span_id == root.span_id
        assert child.span.kind == Span.SpanKind.SPAN_KIND_CLIENT
        assert child.span.start_time_unix_nano >= root.span.start_time_unix_nano
        assert child.span.end_time_unix_nano <= root.span.end_time_unix_nano
        assert child.attributes["ocpi.partner"] == "sbx"
        assert child.attributes["http.request.method"] == "GET"
        assert child.attributes["http.response.status_code"] == 200
        assert child.attributes["url.full"].startswith(base)

    # Window pages (planning probes carry no window) cover every object once, page by page.
    pages = [s for s in all_pages if "ocpi.window" in s.attributes]
    assert len(pages) == summary.pages
    for page in pages:
        assert page.attributes["ocpi.status_code"] == 1000
        assert page.attributes["ocpi.attempt"] == 1
        assert 0 < page.attributes["ocpi.total_count"] <= OBJECTS
        assert 0 < page.attributes["ocpi.object_count"] <= PAGE
        assert "/tokens" in page.attributes["url.full"]
    assert sum(p.attributes["ocpi.object_count"] for p in pages) == OBJECTS
    where = [(p.attributes["ocpi.window"], p.attributes["ocpi.offset"]) for p in pages]
    assert len(set(where)) == len(where)

    # Each message's traceparent names the exported span of the page that fetched it.
    by_ids = {(p.trace_id, p.span_id): p for p in pages}
    messages = await records(bootstrap, f"{prefix}.tokens")
    assert len(messages) == OBJECTS
    seen: set[tuple[str, str]] = set()
    for message in messages:
        headers = dict(message.headers)
        version, trace_id, span_id, flags = headers["traceparent"].decode().split("-")
        assert version == "00"
        assert int(flags, 16) & 0x01  # sampled (0x02, W3C level 2's "random", may be set too)
        page = by_ids[(trace_id, span_id)]
        start = page.attributes["ocpi.offset"]
        assert start <= int(headers["source-offset"]) < start + page.attributes["ocpi.object_count"]
        seen.add((trace_id, span_id))
    assert seen == set(by_ids)

    # The credentials token, plain or base64, never reaches the collector.
    everything = b"".join(b for bodies in got.bodies.values() for b in bodies)
    assert TOKEN.encode() not in everything
    assert b"c2FuZGJveC10b2tlbg" not in everything  # base64("sandbox-token") without padding

    # Metrics may or may not be sent; what arrives must decode, name this service and add up.
    # (Cumulative temporality: the last export of a counter holds its total.)
    metrics = decode_metric_points(got.bodies.get("/v1/metrics", []))
    record_property("otlp_metrics", sorted(metrics))
    expected_totals = {"ocpi_puller.objects_emitted": OBJECTS, "ocpi_puller.pages": len(pages)}
    for name, total in expected_totals.items():
        if name in metrics:
            last_attributes, last_value = metrics[name][-1]
            assert last_attributes["ocpi.partner"] == "sbx"
            assert last_value == total, name


async def test_without_an_endpoint_nothing_is_traced(
    bootstrap: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A service name alone configures nothing: the tracer is a no-op and messages carry no
    # traceparent (rather than one naming a span that was never exported).
    monkeypatch.setenv("OTEL_SERVICE_NAME", SERVICE_NAME)
    async with sandbox(sizes={"tokens": 100}, max_limit=PAGE) as (base, _):
        result = await pull(base, bootstrap, prefix)
    assert result.exit_code == 0
    messages = await records(bootstrap, f"{prefix}.tokens")
    assert len(messages) == 100
    assert all("traceparent" not in dict(m.headers) for m in messages)
