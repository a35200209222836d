"""OpenTelemetry set-up: tracer, meter and their OTLP exporters.

Tracing and metrics export over OTLP only when the standard `OTEL_EXPORTER_OTLP_*` environment is
set (protocol chosen by `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` or `grpc`); otherwise they
stay no-ops. Spans are opened by the HTTP shell around each page fetch, not by the protocol core.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

log = logging.getLogger("ocpi_puller")

INSTRUMENTATION_NAME: Final = "ocpi-puller"


def service_version() -> str:
    """The installed package version (resource attribute `service.version`)."""
    try:
        return metadata.version("ocpi-puller")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def traceparent_of(span: trace.Span) -> str | None:
    """The W3C `traceparent` value of a span, or None for a non-recording (no-op) span."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _otlp_configured(signal: str) -> bool:
    # Standard switches: OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER/OTEL_METRICS_EXPORTER=none
    # (e.g. metrics off where the collector, such as Jaeger, takes traces only).
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def _protocol(signal: str) -> str:
    return os.environ.get(
        f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL",
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ).lower()


def _span_exporter() -> SpanExporter:
    if _protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def _metric_reader() -> MetricReader:
    if _protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return PeriodicExportingMetricReader(OTLPMetricExporter())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return PeriodicExportingMetricReader(HttpMetricExporter())


@dataclass(slots=True)
class Telemetry:
    """The tracer and meter the puller uses, and what must be flushed at exit."""

    tracer: trace.Tracer
    meter: metrics.Meter
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None

    def shutdown(self) -> None:
        """Flush and stop exporters (spans of the last pages included)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def resource(attributes: dict[str, str]) -> Resource:
    """Service name/version (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are honoured)."""
    base = {
        "service.name": os.environ.get("OTEL_SERVICE_NAME", "ocpi-puller"),
        "service.version": service_version(),
    }
    return Resource.create({**base, **attributes})


def setup_telemetry(
    attributes: dict[str, str],
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> Telemetry:
    """Tracer and meter: OTLP when configured by env, the given exporter (tests), else no-op."""
    res = resource(attributes)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    if span_exporter is None and _otlp_configured("TRACES"):
        span_exporter = _span_exporter()
    if span_exporter is not None:
        tracer_provider = TracerProvider(resource=res)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        tracer: trace.Tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME, service_version())
    else:
        tracer = trace.NoOpTracer()
    if metric_reader is None and _otlp_configured("METRICS"):
        metric_reader = _metric_reader()
    if metric_reader is not None:
        meter_provider = MeterProvider(resource=res, metric_readers=[metric_reader])
        meter: metrics.Meter = meter_provider.get_meter(INSTRUMENTATION_NAME, service_version())
    else:
        meter = metrics.NoOpMeter(INSTRUMENTATION_NAME)
    return Telemetry(tracer, meter, tracer_provider, meter_provider)


class PullMetrics:
    """OTel instruments of a pull, labelled by partner and module."""

    def __init__(self, meter: metrics.Meter, partner: str, module: str) -> None:
        self.attributes = {"ocpi.partner": partner, "ocpi.module": module}
        self.objects = meter.create_counter(
            "ocpi_puller.objects_emitted",
            unit="{object}",
            description="objects acknowledged by Kafka",
        )
        self.pages = meter.create_counter(
            "ocpi_puller.pages", unit="{page}", description="pages fetched and acknowledged"
        )
        self.retries = meter.create_counter(
            "ocpi_puller.retries", unit="{retry}", description="requests and produces retried"
        )
        self.dead_lettered = meter.create_counter(
            "ocpi_puller.dead_lettered",
            unit="{object}",
            description="objects sent to the dead-letter topic",
        )
        self.duration = meter.create_histogram(
            "ocpi_puller.pull.duration", unit="s", description="duration of a pull"
        )

    def page(self, objects: int, dead: int) -> None:
        """A page was acknowledged."""
        self.pages.add(1, self.attributes)
        self.objects.add(objects, self.attributes)
        if dead:
            self.dead_lettered.add(dead, self.attributes)

    def retry(self, reason: str) -> None:
        """A request or produce will be retried."""
        self.retries.add(1, {**self.attributes, "reason": reason.split(":")[0][:40]})

    def finished(self, duration_s: float, complete: bool) -> None:
        """The pull ended."""
        self.duration.record(duration_s, {**self.attributes, "complete": complete})
