"""A real OTLP/gRPC receiver for tests: the collector's trace and metrics services on a free port.

It runs in grpc's own server threads, never on a test's event loop: the span processor's final
flush is a blocking export made from `Telemetry.shutdown()`, which would otherwise wait for the
loop it blocks. The image smoke run (`make image-smoke`) uses it too, from the host network.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self._receiver = receiver

    def Export(  # the generated service names it
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._receiver.received(request, dict(context.invocation_metadata()))
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self._receiver = receiver

    def Export(  # the generated service names it
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._receiver.received(request, dict(context.invocation_metadata()))
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpGrpcReceiver:
    """OTLP/gRPC on `host`:<free port>: `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT takes."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self._metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self._metadata: list[dict[str, Any]] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsService(self), self._server
        )
        self.port = self._server.add_insecure_port(f"{host}:0")
        self.endpoint = f"http://{host}:{self.port}"

    def received(self, request: Any, metadata: dict[str, Any]) -> None:
        """Keep one export request (called from the server's threads)."""
        with self._lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self._traces.append(request)
            else:
                self._metrics.append(request)
            self._metadata.append(metadata)

    @property
    def trace_requests(self) -> list[trace_service_pb2.ExportTraceServiceRequest]:
        with self._lock:
            return list(self._traces)

    @property
    def metric_requests(self) -> list[metrics_service_pb2.ExportMetricsServiceRequest]:
        with self._lock:
            return list(self._metrics)

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """The gRPC metadata (headers) of every request."""
        with self._lock:
            return list(self._metadata)

    def __enter__(self) -> OtlpGrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None).wait(timeout=10)


def value_of(value: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue (scalars only: that is all the puller sets)."""
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, Any]:
    """OTLP key/value attributes as a dict."""
    return {pair.key: value_of(pair.value) for pair in pairs}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span with the resource and instrumentation scope it was exported under."""

    span: Span
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        return self.span.parent_span_id.hex()


def spans_of(requests: list[trace_service_pb2.ExportTraceServiceRequest]) -> list[ReceivedSpan]:
    """Every span of every export request, in the order received."""
    return [
        ReceivedSpan(
            span,
            attributes_of(span.attributes),
            attributes_of(resource_spans.resource.attributes),
            scope_spans.scope.name,
            scope_spans.scope.version,
        )
        for request in requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
