"""OpenTelemetry set-up: tracer, meter and their OTLP exporters.

Tracing and metrics export over OTLP only when the standard `OTEL_EXPORTER_OTLP_*` environment is
set (protocol chosen by `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` or `grpc`; any other is a
config error); otherwise they stay no-ops. Spans are opened by the HTTP shell around each page
fetch, not by the protocol core.

Telemetry never slows a pull or shouts: exports run in the SDK's own threads; the first failed
export is one warning line and every later batch is dropped at once (`ExportHealth`); the final
flush at exit gets `EXPORT_BUDGET_S` in all; the SDK's own log lines (`ERROR Failed to export
…`, its retries) show only at debug level.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from producer.errors import ConfigError, cannot_connect
from producer.observe.redaction import redact_url

log = logging.getLogger("ocpi_puller")

INSTRUMENTATION_NAME: Final = "ocpi-puller"
PROTOCOLS: Final = ("http/protobuf", "grpc")
# The most the final flush may add to a run, whatever the collector does (telemetry costs a
# pull at most 1 s in all; loading the exporters takes the rest).
EXPORT_BUDGET_S: Final = 0.6
# A dial to learn whether the endpoint is there at all (refused, name not known, silent).
PROBE_TIMEOUT_S: Final = 0.3


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


PROTOCOL_VARIABLES: Final = (
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
)


def check_protocols() -> None:
    """A protocol the puller cannot speak is a config error naming the variable (the SDK would
    quietly fall back to another)."""
    for name in PROTOCOL_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.strip().lower() not in PROTOCOLS:
            raise ConfigError(f"{name}={value!r} is not supported: use {' or '.join(PROTOCOLS)}")


def _protocol(signal: str) -> str:
    return (
        os.environ.get(
            f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL",
            os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        )
        .strip()
        .lower()
    )


def _endpoint(signal: str) -> str:
    return os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )


class ExportHealth:
    """Whether a run's OTLP endpoint takes exports, shared by its span and metric exporters: the
    first failure is the run's one warning line, and from then on every batch is dropped at once
    (an endpoint that is down never holds up a pull, nor fills the log)."""

    def __init__(self, endpoint: str, protocol: str) -> None:
        self.endpoint = endpoint
        self.protocol = protocol
        self.down = False
        self.took_one = False  # an export succeeded: the endpoint is there
        self._dialled = False
        self._lock = threading.Lock()

    @property
    def shown_endpoint(self) -> str:
        """The endpoint as a log line may show it: no user info, no secret query value."""
        try:
            return redact_url(self.endpoint)
        except ValueError:
            return "(an address that does not parse)"

    def usable(self) -> bool:
        """Whether to export at all: not once the endpoint is down. The first time, one dial
        finds an endpoint that cannot be reached before an exporter spends its retries on it."""
        if not self._dialled and not self.took_one:
            self.check()
        return not self.down

    def check(self) -> None:
        """Dial the endpoint: one that cannot be reached is down now (its warning line)."""
        self._dialled = True
        reason = self._unreachable()
        if reason is not None:
            self._give_up(reason)

    def failed(self, otherwise: str = "it did not accept the export") -> None:
        """An export failed (or the time for one ran out): say why, once. `otherwise` is why
        when the endpoint can be reached."""
        if not self.down:
            self._give_up(self._unreachable() or otherwise)

    def _give_up(self, why: str) -> None:
        with self._lock:
            if self.down:
                return
            self.down = True
        log.warning(
            "OTLP endpoint %s (%s): %s; spans and metrics of this run are dropped",
            self.shown_endpoint,
            self.protocol,
            why,
        )

    def _unreachable(self) -> str | None:
        """`cannot connect to HOST:PORT: why`, or None when the endpoint answers a dial."""
        address = self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}"
        try:
            parts = urlsplit(address)
            host = parts.hostname or "localhost"
            port = parts.port or (4317 if self.protocol == "grpc" else 4318)
        except ValueError:
            return "not a usable address"
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
                return None
        except OSError as error:
            return cannot_connect(host, port, error)


class GuardedSpanExporter(SpanExporter):
    """An OTLP span exporter that gives up for good at its first failure (`ExportHealth`)."""

    def __init__(self, inner: SpanExporter, health: ExportHealth) -> None:
        self._inner = inner
        self._health = health

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._health.usable():
            return SpanExportResult.FAILURE
        result = self._inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self._health.took_one = True
        else:
            self._health.failed()
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._health.down or self._inner.force_flush(timeout_millis)


class GuardedMetricExporter(MetricExporter):
    """An OTLP metric exporter that gives up for good at its first failure (`ExportHealth`)."""

    def __init__(self, inner: MetricExporter, health: ExportHealth) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._health = health

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if not self._health.usable():
            return MetricExportResult.FAILURE
        result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is MetricExportResult.SUCCESS:
            self._health.took_one = True
        else:
            self._health.failed()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._health.down or self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def _span_exporter() -> SpanExporter:
    if _protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def _metric_exporter() -> MetricExporter:
    if _protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter()


def quiet_sdk() -> None:
    """The SDK's own log lines (a failed export, each of its retries) only at debug level: the
    puller says in one line what the operator needs to know."""
    debug = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    logging.getLogger("opentelemetry").setLevel(logging.DEBUG if debug else logging.CRITICAL)


@dataclass(slots=True)
class Telemetry:
    """The tracer and meter the puller uses, and what must be flushed at exit."""

    tracer: trace.Tracer
    meter: metrics.Meter
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    healths: tuple[ExportHealth, ...] = ()

    def shutdown(self, budget_s: float = EXPORT_BUDGET_S) -> None:
        """Flush and stop the exporters (spans of the last pages included), for at most
        `budget_s`: what an endpoint has not taken by then is dropped, with one warning line.
        The flush runs in a thread of its own, left behind if it has to be (a daemon)."""
        providers: list[TracerProvider | MeterProvider] = [
            p for p in (self.tracer_provider, self.meter_provider) if p is not None
        ]
        if not providers:
            return
        started = time.monotonic()
        for health in self.healths:
            health.usable()  # not dialled yet: one that cannot be reached drops all at once
        finished = threading.Event()

        def flush_all() -> None:
            for provider in providers:
                provider.shutdown()
            finished.set()

        threading.Thread(target=flush_all, name="ocpi-puller-otlp-flush", daemon=True).start()
        if not finished.wait(max(0.0, budget_s - (time.monotonic() - started))):
            for health in self.healths:
                health.failed(f"it did not take the last export within {budget_s:g} s")


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
    """Tracer and meter: OTLP when configured by env, the given exporter (tests), else no-op.

    An unsupported `OTEL_EXPORTER_OTLP_*PROTOCOL` is a ConfigError."""
    check_protocols()
    res = resource(attributes)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    # One per endpoint: traces and metrics usually share it, and then its one warning line.
    healths: dict[tuple[str, str], ExportHealth] = {}

    def health_of(signal: str) -> ExportHealth:
        where = (_endpoint(signal), _protocol(signal))
        return healths.setdefault(where, ExportHealth(*where))

    if span_exporter is None and _otlp_configured("TRACES"):
        span_exporter = GuardedSpanExporter(_span_exporter(), health_of("TRACES"))
    if span_exporter is not None:
        # Flushed by Telemetry.shutdown within its budget, never by the SDK's exit handler.
        tracer_provider = TracerProvider(resource=res, shutdown_on_exit=False)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        tracer: trace.Tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME, service_version())
    else:
        tracer = trace.NoOpTracer()
    if metric_reader is None and _otlp_configured("METRICS"):
        metric_reader = PeriodicExportingMetricReader(
            GuardedMetricExporter(_metric_exporter(), health_of("METRICS"))
        )
    if metric_reader is not None:
        meter_provider = MeterProvider(
            resource=res, metric_readers=[metric_reader], shutdown_on_exit=False
        )
        meter: metrics.Meter = meter_provider.get_meter(INSTRUMENTATION_NAME, service_version())
    else:
        meter = metrics.NoOpMeter(INSTRUMENTATION_NAME)
    if healths:
        quiet_sdk()
    return Telemetry(tracer, meter, tracer_provider, meter_provider, tuple(healths.values()))


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
